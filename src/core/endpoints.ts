/**
 * The endpoint record: what a node publishes into the gossip table `endpoints` of each
 * network for every task it runs (key = task id), and what every other subsystem consumes —
 * the overlay (FDB/neighbours), the load balancer (VIP and ingress backends) and DNS (names).
 * Records arrive from the network, so decoding validates everything and never throws:
 * a bad record is reported (and counted by the caller), not applied.
 */
import { z } from 'zod';
import { canonicalIp6, isIp6 } from './ipam/addr6.js';
import { COMPACT_VERSION, readCompact, writeCompact } from './endpoint-compact.js';

export const ENDPOINT_TABLE = 'endpoints';
/** The gossip network every node joins: ingress endpoints (published ports) live there. */
export const INGRESS_NETWORK = 'ingress';

/** An IPv6 underlay address, canonical (so FDB entries compare equal to what the kernel prints). */
const underlayIp6 = z.string().max(39).refine((s) => isIp6(s) && canonicalIp6(s) === s, 'must be a canonical IPv6 address');
const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/);
const label = z.string().min(1).max(63);

export const endpointPortSchema = z.object({
  proto: z.enum(['tcp', 'udp']),
  /** Port the task listens on. */
  target: z.number().int().min(1).max(65535),
  /** Published port on every node (ingress) or on the task's node (host); absent = VIP only. */
  published: z.number().int().min(1).max(65535).optional(),
  mode: z.enum(['ingress', 'host']).optional(),
  policy: z.enum(['cluster', 'local']).optional(),
  /** PROXY protocol header the receiving node's agent writes (ingress, policy cluster, TCP only). */
  proxyProtocol: z.enum(['v1', 'v2']).optional(),
}).strict();

export const endpointLbSchema = z.object({
  algorithm: z.enum(['random', 'round-robin', 'source-hash']).optional(),
  locality: z.enum(['none', 'node', 'zone']).optional(),
  weight: z.number().int().min(1).max(10000).optional(),
}).strict();

export const endpointRecordSchema = z.object({
  v: z.literal(1),
  taskId: z.string().min(1).max(64),
  taskName: z.string().min(1).max(128),
  serviceId: z.string().min(1).max(64),
  serviceName: label,
  /** Network id (the gossip network name) and its human name. */
  network: z.string().min(1).max(64),
  networkName: label,
  ip: ipv4,
  /**
   * Dual stack (issue #19 item 2): the task's IPv6 address on this network, canonical text
   * (core/ipam/addr6.ts). Optional and additive: records without it (IPv4-only networks, older
   * nodes) decode as before, and it is not part of the record's identity (key = task id).
   */
  ip6: z.string().regex(/^[0-9a-f:]{2,39}$/).optional(),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
  node: z.string().min(1).max(64),
  /** The hosting node's underlay address (VXLAN destination). */
  /** The owner node's underlay address: IPv4, or IPv6 in canonical form (an IPv6 underlay, issue 19 §2). */
  nodeIp: z.union([ipv4, underlayIp6]),
  vip: ipv4.nullable(),
  /**
   * The service's IPv6 VIP on a dual-stack network (issue #19 item 2 part 2): DNS AAAA and the v6
   * LB frontend. Optional and additive like `ip6`: records without it decode as before.
   */
  vip6: z.string().regex(/^[0-9a-f:]{2,39}$/).optional(),
  endpointMode: z.enum(['vip', 'dnsrr']),
  aliases: z.array(label).max(32),
  ports: z.array(endpointPortSchema).max(64),
  /**
   * 'running': a backend and a DNS answer. 'draining': keep established connections, take no
   * new ones, drop from DNS. 'starting': a task with a health check that is not healthy yet —
   * on the overlay (reachable, it may need peers to get healthy) but neither a backend nor a
   * DNS answer (docker's disabled service binding).
   */
  state: z.enum(['starting', 'running', 'draining']),
  /**
   * Balancing of the service (issue 19; core/lb/balance.ts) and this task's relative weight.
   * Optional and only written when set, so records of services that use none stay readable by
   * older agents (the schema is strict).
   */
  lb: endpointLbSchema.optional(),
  /** The hosting node's `node.labels.zone` (locality `zone`); only written when the node has one. */
  zone: z.string().min(1).max(63).optional(),
}).strict();

export type EndpointRecord = z.infer<typeof endpointRecordSchema>;
export type EndpointPort = z.infer<typeof endpointPortSchema>;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/**
 * How a record is written: 'json' (v1, what every agent reads) or 'compact' (endpoint-compact.ts, ~4×
 * smaller; read by agents from this version on). Agents before it refuse a compact record as bad JSON
 * (counted, not applied), so an agent writes 'compact' on a network only when every node on it says it
 * reads it (compactAllowed); JSON stays the default for every other writer.
 */
export type EndpointEncoding = 'json' | 'compact';

/**
 * Encodes a record (throws on an invalid one: a bug of the writer). 'compact' falls back to JSON for a record
 * whose addresses are not in canonical spelling (the schema accepts `10.0.0.05`; compact packs only exact ones).
 */
export function encodeEndpoint(r: EndpointRecord, encoding: EndpointEncoding = 'json'): Uint8Array {
  const valid = endpointRecordSchema.parse(r);
  return (encoding === 'compact' ? writeCompact(valid) : null) ?? enc.encode(JSON.stringify(valid));
}

/** The encoding of stored record bytes (by their first byte; what is neither decodes to an error anyway). */
export function endpointEncodingOf(bytes: Uint8Array): EndpointEncoding {
  return bytes[0] === COMPACT_VERSION ? 'compact' : 'json';
}

export type DecodedEndpoint = { ok: true; record: EndpointRecord } | { ok: false; reason: string };

/**
 * Decodes either encoding; never throws. Reasons: 'endpoint-json' (not JSON: also what a record of an unknown
 * future encoding gives), 'endpoint-compact' (compact bytes that do not read exactly), 'endpoint-schema'.
 */
export function decodeEndpoint(bytes: Uint8Array): DecodedEndpoint {
  let raw: unknown;
  if (bytes[0] === COMPACT_VERSION) {
    const c = readCompact(bytes);
    if (!c.ok) return { ok: false, reason: 'endpoint-compact' };
    raw = { v: 1, ...c.fields };
  } else {
    try {
      // The reviver (drops `__proto__` keys) makes JSON.parse ~3x slower, and runs for every record of every
      // table event in five subsystems: only text that can spell such a key (literally or with a \u escape) needs it.
      const text = dec.decode(bytes);
      raw = text.includes('__proto__') || text.includes('\\u') ? JSON.parse(text, (k, v: unknown) => (k === '__proto__' ? undefined : v)) : JSON.parse(text);
    } catch {
      return { ok: false, reason: 'endpoint-json' };
    }
  }
  const r = endpointRecordSchema.safeParse(raw);
  return r.success ? { ok: true, record: r.data } : { ok: false, reason: 'endpoint-schema' };
}

/**
 * The gossip table (per network) where each node says which record encodings it reads: key = node name,
 * value = ENDPOINT_CODECS. Agents before the compact encoding write nothing there.
 */
export const ENDPOINT_CODEC_TABLE = 'endpoint-codecs';
export const ENDPOINT_CODECS = 'json,compact';

/**
 * Whether records on a network may be written compact: every node on it (`nodes`, this one included) has said
 * it reads them. A node whose word has not arrived yet counts as one that does not (JSON until it does): the
 * rule fails towards the encoding every agent reads.
 */
export function compactAllowed(nodes: readonly string[], codecs: ReadonlyMap<string, string>): boolean {
  return nodes.length > 0 && nodes.every((n) => (codecs.get(n) ?? '').split(',').includes('compact'));
}
