/**
 * IPv6 address and CIDR arithmetic for dual-stack overlays (issue #19 item 2), the IPv6 twin of
 * addr.ts. Addresses are 128-bit BigInts internally; strings only at the edges, always written
 * in RFC 5952 canonical form (lowercase, longest run of ≥ 2 zero groups as `::`, first on a tie),
 * so two spellings of one address compare equal once formatted (DNS PTR keys, neighbour diffs).
 * Embedded IPv4 (`::ffff:1.2.3.4`) and zone ids (`%eth0`) are refused: an overlay task address is
 * neither.
 */
import { MeshError } from '../errors.js';

export interface Cidr6 {
  /** Network address (host bits zero). */
  base: bigint;
  /** Prefix length 0..128. */
  prefix: number;
}

const ALL = (1n << 128n) - 1n;
const GROUP = /^[0-9a-fA-F]{1,4}$/;

function bad(s: unknown, why: string): MeshError {
  return new MeshError('MESHD_BAD_ARGUMENT', `invalid IPv6 address ${JSON.stringify(s)}: ${why}`);
}

/** Parses an IPv6 address to a BigInt; throws MESHD_BAD_ARGUMENT on anything else. */
export function parseIp6(s: string): bigint {
  if (typeof s !== 'string' || s.length === 0 || s.length > 39) throw bad(s, 'expected 8 hex groups, `::` allowed once');
  const halves = s.split('::');
  if (halves.length > 2) throw bad(s, '`::` appears more than once');
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const groups = head.length + tail.length;
  if (halves.length === 1 ? groups !== 8 : groups > 7) throw bad(s, 'expected 8 hex groups, `::` allowed once');
  let v = 0n;
  const push = (g: string): void => {
    if (!GROUP.test(g)) throw bad(s, `group ${JSON.stringify(g)} is not 1-4 hex digits`);
    v = (v << 16n) | BigInt(parseInt(g, 16));
  };
  head.forEach(push);
  if (halves.length === 2) v <<= 16n * BigInt(8 - groups);
  tail.forEach(push);
  return v;
}

/** RFC 5952 canonical text of a 128-bit value. */
export function formatIp6(n: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function isIp6(s: string): boolean {
  // Every IPv6 spelling has at least two colons ('::'). Without this a host:port or IPv4 string threw (and built
  // a MeshError) inside parseIp6 on every call: ~1 % of a 10-node churn agent's CPU, from per-packet callers.
  const first = s.indexOf(':');
  if (first < 0 || s.indexOf(':', first + 1) < 0) return false;
  try {
    parseIp6(s);
    return true;
  } catch {
    return false;
  }
}

/** The canonical spelling of an IPv6 address (throws on a bad one). */
export function canonicalIp6(s: string): string {
  return formatIp6(parseIp6(s));
}

export function mask6Of(prefix: number): bigint {
  return prefix === 0 ? 0n : (ALL >> BigInt(128 - prefix)) << BigInt(128 - prefix);
}

/** Number of addresses in a prefix, as a BigInt (2^(128-prefix)). */
export function size6Of(prefix: number): bigint {
  return 1n << BigInt(128 - prefix);
}

/** Parses "addr/len"; host bits must be zero (as parseCidr: ambiguous intent otherwise). */
export function parseCidr6(s: string): Cidr6 {
  if (typeof s !== 'string') throw new MeshError('MESHD_BAD_ARGUMENT', `invalid IPv6 CIDR: ${String(s)}`);
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s.trim());
  if (!m) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid IPv6 CIDR ${JSON.stringify(s)}: expected addr/len, e.g. fd00:1::/64`);
  const prefix = Number(m[2]);
  if (prefix > 128) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid IPv6 CIDR ${JSON.stringify(s)}: prefix length ${prefix} > 128`);
  let ip: bigint;
  try {
    ip = parseIp6(m[1] ?? '');
  } catch {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid IPv6 CIDR ${JSON.stringify(s)}: bad address`);
  }
  const base = ip & mask6Of(prefix);
  if (base !== ip) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid IPv6 CIDR ${JSON.stringify(s)}: host bits set (did you mean ${formatIp6(base)}/${prefix}?)`);
  }
  return { base, prefix };
}

export function formatCidr6(c: Cidr6): string {
  return `${formatIp6(c.base)}/${c.prefix}`;
}

export function cidr6Contains(c: Cidr6, ip: bigint): boolean {
  return (ip & mask6Of(c.prefix)) === c.base;
}

export function cidrs6Overlap(a: Cidr6, b: Cidr6): boolean {
  const m = mask6Of(Math.min(a.prefix, b.prefix));
  return (a.base & m) === (b.base & m);
}

export function last6Of(c: Cidr6): bigint {
  return c.base + size6Of(c.prefix) - 1n;
}

/** True for a string that looks like an IPv6 CIDR or address (has a colon): how `--subnet` picks a family. */
export function looksV6(s: string): boolean {
  return typeof s === 'string' && s.includes(':');
}

/** `fd00::1` → `1.0.0.0.…​.d.f.ip6.arpa` (32 nibbles, least significant first). */
export function reverseName6(ip: string): string {
  const n = parseIp6(ip);
  const nibbles: string[] = [];
  for (let i = 0; i < 32; i++) nibbles.push(((n >> BigInt(i * 4)) & 0xfn).toString(16));
  return `${nibbles.join('.')}.ip6.arpa`;
}

/** The address of a full (32-nibble) `ip6.arpa` name, canonical; undefined for anything else. */
export function parseReverse6(lowerName: string): string | undefined {
  const suffix = '.ip6.arpa';
  if (!lowerName.endsWith(suffix)) return undefined;
  const parts = lowerName.slice(0, -suffix.length).split('.');
  if (parts.length !== 32 || !parts.every((p) => /^[0-9a-f]$/.test(p))) return undefined;
  let n = 0n;
  for (let i = 31; i >= 0; i--) n = (n << 4n) | BigInt(parseInt(parts[i]!, 16));
  return formatIp6(n);
}
