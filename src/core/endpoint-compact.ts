/**
 * Compact binary encoding of an endpoint record (issue 18 §1): the gossip send budget, not CPU, limits how
 * fast records reach every node under churn, and the JSON record (field names, hex ids, dotted addresses)
 * spent ~300–440 bytes on what fits in ~90. Pure; bytes come from the network, so `readCompact` never throws
 * and refuses anything it cannot read exactly (the caller then validates the fields with the record's schema).
 *
 * Layout (big-endian, varint = unsigned LEB128 of at most 4 bytes, str = varint (n << 1 | hex) then n bytes:
 * hex set → the bytes of an even-length lowercase hex string, 2n characters; else n bytes of UTF-8):
 *
 *   u8 COMPACT_VERSION (0x01; a JSON record starts with `{` 0x7b, so the first byte tells them apart)
 *   varint flags (FLAG_* below; unknown bits refused)
 *   str taskId, str taskName (or only its suffix after `serviceName.`: F_NAME_SUFFIX), str serviceId,
 *   str serviceName, str network, str networkName, str node
 *   4 ip, [16 ip6], [6 mac unless F_MAC_DERIVED], 4|16 nodeIp (F_NODE_IP6), [4 vip], [16 vip6]
 *   varint #aliases, str each; varint #ports, each: u8 port flags, u16 target, [u16 published]
 *   [u8 lb flags, [varint weight]], [str zone]
 *
 * Addresses are packed only in their canonical spelling (what the agents write); a record with another
 * spelling the schema also accepts (`10.0.0.05`, a non-canonical ip6) is not packable: `writeCompact`
 * returns null and the caller writes JSON, so a round trip is always exact.
 */
import { formatIp, isIp, macFromIp, parseIp } from './ipam/addr.js';
import { formatIp6, isIp6, parseIp6 } from './ipam/addr6.js';

export const COMPACT_VERSION = 0x01;

const F_DNSRR = 1 << 0;
/** Bits 1–2: state (0 starting, 1 running, 2 draining). */
const F_STATE_SHIFT = 1;
const F_IP6 = 1 << 3;
const F_VIP = 1 << 4;
const F_VIP6 = 1 << 5;
const F_LB = 1 << 6;
const F_ZONE = 1 << 7;
const F_MAC_DERIVED = 1 << 8;
const F_NAME_SUFFIX = 1 << 9;
const F_NODE_IP6 = 1 << 10;
const F_ALL = (1 << 11) - 1;

const STATES = ['starting', 'running', 'draining'] as const;
const MODES = [undefined, 'ingress', 'host'] as const;
const POLICIES = [undefined, 'cluster', 'local'] as const;
const PROXIES = [undefined, 'v1', 'v2'] as const;
const ALGORITHMS = [undefined, 'random', 'round-robin', 'source-hash'] as const;
const LOCALITIES = [undefined, 'none', 'node', 'zone'] as const;

/** The record's fields as the codec sees them (EndpointRecord's shape; endpoints.ts validates). */
export interface CompactFields {
  taskId: string; taskName: string; serviceId: string; serviceName: string; network: string; networkName: string;
  ip: string; ip6?: string; mac: string; node: string; nodeIp: string; vip: string | null; vip6?: string;
  endpointMode: 'vip' | 'dnsrr'; aliases: string[];
  ports: Array<{ proto: 'tcp' | 'udp'; target: number; published?: number; mode?: 'ingress' | 'host'; policy?: 'cluster' | 'local'; proxyProtocol?: 'v1' | 'v2' }>;
  state: 'starting' | 'running' | 'draining';
  lb?: { algorithm?: 'random' | 'round-robin' | 'source-hash'; locality?: 'none' | 'node' | 'zone'; weight?: number };
  zone?: string;
}

const enc = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });
const HEX = /^(?:[0-9a-f]{2})+$/;

const canonical4 = (s: string): boolean => isIp(s) && formatIp(parseIp(s)) === s;
const canonical6 = (s: string): boolean => isIp6(s) && formatIp6(parseIp6(s)) === s;

class Writer {
  private buf = new Uint8Array(256);
  private n = 0;
  private room(k: number): void {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  u8(v: number): void {
    this.room(1);
    this.buf[this.n++] = v & 255;
  }
  u16(v: number): void {
    this.u8(v >>> 8);
    this.u8(v);
  }
  varint(v: number): void {
    while (v >= 0x80) {
      this.u8((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    this.u8(v);
  }
  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  str(s: string): void {
    if (HEX.test(s)) {
      this.varint(((s.length / 2) << 1) | 1);
      for (let i = 0; i < s.length; i += 2) this.u8(parseInt(s.slice(i, i + 2), 16));
      return;
    }
    const b = enc.encode(s);
    this.varint(b.length << 1);
    this.bytes(b);
  }
  ip4(s: string): void {
    const v = parseIp(s);
    this.u16(v >>> 16);
    this.u16(v & 0xffff);
  }
  ip6(s: string): void {
    const v = parseIp6(s);
    for (let i = 7; i >= 0; i--) this.u16(Number((v >> BigInt(i * 16)) & 0xffffn));
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.n);
  }
}

/** The compact bytes of a record, or null when one of its addresses is not in canonical spelling (write JSON). */
export function writeCompact(r: CompactFields): Uint8Array | null {
  if (![r.ip, r.vip ?? '0.0.0.0'].every(canonical4)) return null;
  if (!(canonical4(r.nodeIp) || canonical6(r.nodeIp))) return null;
  if ((r.ip6 !== undefined && !canonical6(r.ip6)) || (r.vip6 !== undefined && !canonical6(r.vip6))) return null;
  const suffix = r.taskName.startsWith(`${r.serviceName}.`) ? r.taskName.slice(r.serviceName.length + 1) : undefined;
  const nodeIp6 = !canonical4(r.nodeIp);
  const flags = (r.endpointMode === 'dnsrr' ? F_DNSRR : 0) | (STATES.indexOf(r.state) << F_STATE_SHIFT)
    | (r.ip6 !== undefined ? F_IP6 : 0) | (r.vip !== null ? F_VIP : 0) | (r.vip6 !== undefined ? F_VIP6 : 0)
    | (r.lb !== undefined ? F_LB : 0) | (r.zone !== undefined ? F_ZONE : 0) | (r.mac === macFromIp(r.ip) ? F_MAC_DERIVED : 0)
    | (suffix !== undefined ? F_NAME_SUFFIX : 0) | (nodeIp6 ? F_NODE_IP6 : 0);
  const w = new Writer();
  w.u8(COMPACT_VERSION);
  w.varint(flags);
  w.str(r.taskId);
  w.str(suffix ?? r.taskName);
  for (const s of [r.serviceId, r.serviceName, r.network, r.networkName, r.node]) w.str(s);
  w.ip4(r.ip);
  if (r.ip6 !== undefined) w.ip6(r.ip6);
  if (!(flags & F_MAC_DERIVED)) for (const h of r.mac.split(':')) w.u8(parseInt(h, 16));
  if (nodeIp6) w.ip6(r.nodeIp);
  else w.ip4(r.nodeIp);
  if (r.vip !== null) w.ip4(r.vip);
  if (r.vip6 !== undefined) w.ip6(r.vip6);
  w.varint(r.aliases.length);
  for (const a of r.aliases) w.str(a);
  w.varint(r.ports.length);
  for (const p of r.ports) {
    w.u8((p.proto === 'udp' ? 1 : 0) | (p.published !== undefined ? 2 : 0) | (MODES.indexOf(p.mode) << 2)
      | (POLICIES.indexOf(p.policy) << 4) | (PROXIES.indexOf(p.proxyProtocol) << 6));
    w.u16(p.target);
    if (p.published !== undefined) w.u16(p.published);
  }
  if (r.lb) {
    w.u8(ALGORITHMS.indexOf(r.lb.algorithm) | (LOCALITIES.indexOf(r.lb.locality) << 2) | (r.lb.weight !== undefined ? 16 : 0));
    if (r.lb.weight !== undefined) w.varint(r.lb.weight);
  }
  if (r.zone !== undefined) w.str(r.zone);
  return w.done();
}

/** Bounds-checked reader: any overrun or bad value sets `bad` and yields zeros/empty strings from then on. */
class Reader {
  bad: string | null = null;
  private i = 1;
  constructor(private readonly b: Uint8Array) {}
  get atEnd(): boolean {
    return this.i === this.b.length;
  }
  fail(why: string): void {
    this.bad ??= why;
  }
  u8(): number {
    if (this.i >= this.b.length) {
      this.fail('truncated');
      return 0;
    }
    return this.b[this.i++]!;
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  /** At most 4 bytes (< 2^28): every count and length here is far below. */
  varint(): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const x = this.u8();
      v |= (x & 0x7f) << (7 * k);
      if (!(x & 0x80)) return v;
    }
    this.fail('varint');
    return 0;
  }
  str(): string {
    const h = this.varint();
    const n = h >>> 1;
    if (this.bad || n > this.b.length - this.i) {
      this.fail('truncated');
      return '';
    }
    const s = this.b.subarray(this.i, this.i + n);
    this.i += n;
    if (h & 1) {
      let out = '';
      for (const x of s) out += x.toString(16).padStart(2, '0');
      return out;
    }
    try {
      return utf8.decode(s);
    } catch {
      this.fail('utf8');
      return '';
    }
  }
  ip4(): string {
    return formatIp(((this.u16() << 16) | this.u16()) >>> 0);
  }
  ip6(): string {
    let v = 0n;
    for (let k = 0; k < 8; k++) v = (v << 16n) | BigInt(this.u16());
    return formatIp6(v);
  }
}

function pick<T>(list: readonly T[], i: number, r: Reader): T {
  if (i >= list.length) r.fail('enum');
  return list[i] ?? list[0]!;
}

/**
 * The fields of compact `bytes` (first byte COMPACT_VERSION), or why not: 'truncated', 'varint', 'utf8',
 * 'enum', 'flags', 'trailing'. Never throws. The fields still need the record schema's checks.
 */
export function readCompact(bytes: Uint8Array): { ok: true; fields: Record<string, unknown> } | { ok: false; reason: string } {
  if (bytes[0] !== COMPACT_VERSION) return { ok: false, reason: 'version' };
  const r = new Reader(bytes);
  const flags = r.varint();
  if (flags & ~F_ALL) r.fail('flags');
  const o: Record<string, unknown> = {};
  o.taskId = r.str();
  const name = r.str();
  o.serviceId = r.str();
  o.serviceName = r.str();
  o.taskName = flags & F_NAME_SUFFIX ? `${o.serviceName as string}.${name}` : name;
  o.network = r.str();
  o.networkName = r.str();
  o.node = r.str();
  o.ip = r.ip4();
  if (flags & F_IP6) o.ip6 = r.ip6();
  if (flags & F_MAC_DERIVED) o.mac = r.bad ? '' : macFromIp(o.ip as string);
  else o.mac = Array.from({ length: 6 }, () => r.u8().toString(16).padStart(2, '0')).join(':');
  o.nodeIp = flags & F_NODE_IP6 ? r.ip6() : r.ip4();
  o.vip = flags & F_VIP ? r.ip4() : null;
  if (flags & F_VIP6) o.vip6 = r.ip6();
  o.endpointMode = flags & F_DNSRR ? 'dnsrr' : 'vip';
  o.state = pick(STATES, (flags >>> F_STATE_SHIFT) & 3, r);
  const aliases: string[] = [];
  // counts bounded by the bytes left (each item takes ≥ 1 byte), so a lying count cannot loop long
  const na = r.varint();
  if (na > bytes.length) r.fail('truncated');
  for (let k = 0; k < na && !r.bad; k++) aliases.push(r.str());
  o.aliases = aliases;
  const ports: Array<Record<string, unknown>> = [];
  const np = r.varint();
  if (np > bytes.length) r.fail('truncated');
  for (let k = 0; k < np && !r.bad; k++) {
    const f = r.u8();
    const p: Record<string, unknown> = { proto: f & 1 ? 'udp' : 'tcp', target: r.u16() };
    if (f & 2) p.published = r.u16();
    const mode = pick(MODES, (f >>> 2) & 3, r);
    const policy = pick(POLICIES, (f >>> 4) & 3, r);
    const proxy = pick(PROXIES, (f >>> 6) & 3, r);
    if (mode) p.mode = mode;
    if (policy) p.policy = policy;
    if (proxy) p.proxyProtocol = proxy;
    ports.push(p);
  }
  o.ports = ports;
  if (flags & F_LB) {
    const f = r.u8();
    if (f & ~31) r.fail('flags');
    const lb: Record<string, unknown> = {};
    const algorithm = pick(ALGORITHMS, f & 3, r);
    const locality = pick(LOCALITIES, (f >>> 2) & 3, r);
    if (algorithm) lb.algorithm = algorithm;
    if (locality) lb.locality = locality;
    if (f & 16) lb.weight = r.varint();
    o.lb = lb;
  }
  if (flags & F_ZONE) o.zone = r.str();
  if (!r.bad && !r.atEnd) r.fail('trailing');
  return r.bad ? { ok: false, reason: r.bad } : { ok: true, fields: o };
}
