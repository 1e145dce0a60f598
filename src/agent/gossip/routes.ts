/**
 * The gossip control API: members and metrics, the per-network tables (values shown as text),
 * and manual network join/leave and table writes for operators and tests. Endpoint records are
 * shown as their JSON text whichever encoding they travel in (compact records are binary: issue 18
 * §1), with `encoding` and `bytes` saying what is on the wire; any other value that is not UTF-8
 * comes as `valueBase64`. A write takes `value` (text) or `valueBase64` (bytes, e.g. a compact record). Every name, key and
 * value is checked against the wire limits (core/gossip/wire.ts LIMITS) before it reaches the
 * core: a bad one is MESHD_BAD_ARGUMENT, never a truncated or dropped write.
 */
import type { Router } from '../../adapters/api/server.js';
import { MeshError } from '../../core/errors.js';
import type { GossipNode } from '../../core/gossip/index.js';
import { LIMITS } from '../../core/gossip/wire.js';
import { decodeEndpoint, ENDPOINT_TABLE, endpointEncodingOf } from '../../core/endpoints.js';

/** The keyring view the key routes serve (keys.ts implements it). */
export type KeyringView = { encrypted: boolean; keys: Array<{ fingerprint: string; primary: boolean }> };

/** What the routes use of the gossip subsystem (GossipSubsystem satisfies it). */
export interface GossipRoutesHost {
  readonly core: GossipNode;
  now(): number;
  /** Flushes what a direct core call queued (sends, events). */
  pump(): void;
}

const enc = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** How one table value is shown (see the file comment). */
export function showValue(table: string, value: Uint8Array): { value: string; encoding?: string; bytes?: number; valueBase64?: string } {
  if (table === ENDPOINT_TABLE) {
    const d = decodeEndpoint(value);
    const encoding = endpointEncodingOf(value);
    if (d.ok && encoding === 'compact') return { value: JSON.stringify(d.record), encoding, bytes: value.length };
  }
  try {
    return { value: utf8.decode(value) };
  } catch {
    return { value: '', valueBase64: Buffer.from(value).toString('base64') };
  }
}

function str(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || enc.encode(v).length > max) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `${what} must be a non-empty string of at most ${max} bytes`);
  }
  return v;
}

export function registerGossipRoutes(router: Router, g: GossipRoutesHost): void {
  router.add('GET', '/v1/gossip/members', () => ({ json: g.core.members() }));
  router.add('GET', '/v1/gossip/metrics', () => ({ json: { ...g.core.metrics(), members: g.core.members().length, health: g.core.health() } }));
  router.add('GET', '/v1/gossip/tables', (r) => {
    const only = r.query.get('network');
    const nets = only ? [str(only, 'network', LIMITS.name)] : g.core.networks();
    return {
      json: nets.map((network) => ({
        network,
        nodes: g.core.networkNodes(network),
        entries: g.core.tableEntries(network).map((e) => ({ table: e.table, key: e.key, ...showValue(e.table, e.value), owner: e.owner, ltime: e.ltime })),
      })),
    };
  });
  router.add('POST', '/v1/gossip/networks/:network', (r) => {
    g.core.joinNetwork(str(r.params.network, 'network', LIMITS.name), g.now());
    g.pump();
    return { json: { ok: true } };
  });
  router.add('DELETE', '/v1/gossip/networks/:network', (r) => {
    g.core.leaveNetwork(str(r.params.network, 'network', LIMITS.name), g.now());
    g.pump();
    return { json: { ok: true } };
  });
  router.add('POST', '/v1/gossip/tables', (r) => {
    const b = (r.body ?? {}) as Record<string, unknown>;
    const network = str(b.network, 'network', LIMITS.name);
    const table = str(b.table, 'table', LIMITS.name);
    const key = str(b.key, 'key', LIMITS.key);
    if (b.delete === true) {
      const existed = g.core.tableDelete(network, table, key, g.now());
      g.pump();
      if (!existed) throw new MeshError('MESHD_NOT_FOUND', `no entry ${network}/${table}/${key}`);
      return { json: { ok: true } };
    }
    let value: Uint8Array;
    if (typeof b.valueBase64 === 'string' && b.value === undefined && /^[A-Za-z0-9+/]*={0,2}$/.test(b.valueBase64)) {
      value = new Uint8Array(Buffer.from(b.valueBase64, 'base64'));
    } else if (typeof b.value === 'string' && b.valueBase64 === undefined) {
      value = enc.encode(b.value);
    } else {
      throw new MeshError('MESHD_BAD_ARGUMENT', 'give the value as `value` (a string) or `valueBase64` (base64 bytes), one of them');
    }
    if (value.length > LIMITS.value) throw new MeshError('MESHD_BAD_ARGUMENT', `value must be at most ${LIMITS.value} bytes`);
    if (!g.core.networks().includes(network)) throw new MeshError('MESHD_BAD_ARGUMENT', `this node has not joined network ${network}`);
    g.core.tableSet(network, table, key, value, g.now());
    g.pump();
    return { json: { ok: true } };
  });
}

/** The keyring API (keys arrive in request bodies, never argv; only fingerprints come back). */
export function registerGossipKeyRoutes(router: Router, keys: { list(): KeyringView; change(op: unknown, keyB64: unknown): KeyringView }): void {
  router.add('GET', '/v1/gossip/keys', () => ({ json: keys.list() }));
  router.add('POST', '/v1/gossip/keys', (r) => {
    const b = (r.body ?? {}) as Record<string, unknown>;
    return { json: keys.change(b.op, b.key) };
  });
}
