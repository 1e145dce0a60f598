/**
 * The agent's copy of the cluster's revocation list (pure: no I/O, no timers). The manager keeps
 * the list (src/adapters/pki/revocation.ts, written by `node rm`) and serves it to nodes at
 * `GET /v1/revocations`; each agent fetches it (peer.ts) and refuses peer requests made with a
 * revoked certificate — by node id (every certificate the node ever had) or by serial.
 *
 * Why agents fetch it: the peer API verifies certificates against the cluster CA only, and a
 * removed node's certificate stays valid until it expires (days). The fetched list closes that
 * gap within one refresh period (REVOCATION_REFRESH_MS).
 */
import { MeshError } from '../../core/errors.js';

/**
 * How often an agent fetches the list, ms. 30 s bounds how long a removed node keeps reading
 * other nodes' debug views (or, for a manager certificate, exec/logs) over the peer API. The cost
 * is one small GET per node per period at the manager, against the link's two dispatcher
 * requests per node per second — negligible — while a shorter period buys little: a removed
 * node is also cut off from gossip at the next key rotation, and `node rm` is an operator's act,
 * not an attack response measured in seconds.
 */
export const REVOCATION_REFRESH_MS = 30_000;

/** After a failed fetch: 1 s, 2 s, 4 s … capped at the period (the manager may be restarting). */
export function revocationRetryMs(failures: number, periodMs: number): number {
  if (failures <= 0) return periodMs;
  return Math.min(periodMs, 1000 * 2 ** Math.min(failures - 1, 20));
}

/** Certificate serials as hex, compared without case or leading zeros (TLS gives upper case). */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

export interface RevokedSet {
  readonly nodes: ReadonlySet<string>;
  readonly serials: ReadonlySet<string>;
}

export const EMPTY_REVOKED: RevokedSet = Object.freeze({ nodes: new Set<string>(), serials: new Set<string>() });

/**
 * The manager's answer `{ entries: [{ kind: 'node'|'serial', id, until, at }] }` to a set.
 * A malformed answer is refused as a whole (MESHD_INTERNAL, the manager is of another version or
 * broken): taking part of it could silently forget a revocation.
 */
export function parseRevocations(v: unknown): RevokedSet {
  const entries = (v as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(entries)) throw new MeshError('MESHD_INTERNAL', 'the manager\'s revocation list is malformed: no entries array', { reason: 'malformed-revocations' });
  const nodes = new Set<string>();
  const serials = new Set<string>();
  for (const [i, e] of entries.entries()) {
    const r = e as { kind?: unknown; id?: unknown } | null;
    if (!r || typeof r.id !== 'string' || !r.id || (r.kind !== 'node' && r.kind !== 'serial')) {
      throw new MeshError('MESHD_INTERNAL', `the manager's revocation list is malformed at entry ${i}`, { reason: 'malformed-revocations', index: i });
    }
    if (r.kind === 'node') nodes.add(r.id);
    else serials.add(normalizeSerial(r.id));
  }
  return { nodes, serials };
}

export function isRevokedIn(set: RevokedSet, nodeId: string, serial: string): boolean {
  return set.nodes.has(nodeId) || (serial !== '' && set.serials.has(normalizeSerial(serial)));
}
