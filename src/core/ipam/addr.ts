/**
 * IPv4 address and CIDR arithmetic as small pure functions (table-tested).
 * Addresses are unsigned 32-bit integers internally; strings only at the edges.
 * IPv4 only: the overlay's subnets and the underlay are IPv4 (like Docker's default pools).
 */
import { MeshError } from '../errors.js';

export interface Cidr {
  /** Network address (host bits zero), unsigned 32-bit. */
  base: number;
  /** Prefix length 0..32. */
  prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses dotted-quad IPv4 to an unsigned int; throws MESHD_BAD_ARGUMENT on anything else. */
export function parseIp(s: string): number {
  const parts = typeof s === 'string' ? s.split('.') : [];
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid IPv4 address: ${JSON.stringify(s)}`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0) >>> 0;
}

export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function isIp(s: string): boolean {
  try {
    parseIp(s);
    return true;
  } catch {
    return false;
  }
}

/** Netmask as unsigned int for a prefix length (0 → 0, 32 → 0xffffffff). */
export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Number of addresses in a prefix (2^(32-prefix)). */
export function sizeOf(prefix: number): number {
  return 2 ** (32 - prefix);
}

/**
 * Parses "a.b.c.d/len". Host bits must be zero ("10.0.0.1/24" is rejected: ambiguous
 * intent, Docker rejects it too).
 */
export function parseCidr(s: string): Cidr {
  if (typeof s !== 'string') throw new MeshError('MESHD_BAD_ARGUMENT', `invalid CIDR: ${String(s)}`);
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s.trim());
  if (!m) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid CIDR ${JSON.stringify(s)}: expected a.b.c.d/len`);
  const prefix = Number(m[2]);
  if (prefix > 32) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid CIDR ${JSON.stringify(s)}: prefix length ${prefix} > 32`);
  let ip: number;
  try {
    ip = parseIp(m[1] ?? '');
  } catch {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid CIDR ${JSON.stringify(s)}: bad address`);
  }
  const base = (ip & maskOf(prefix)) >>> 0;
  if (base !== ip) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid CIDR ${JSON.stringify(s)}: host bits set (did you mean ${formatIp(base)}/${prefix}?)`);
  }
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.prefix)) >>> 0) === c.base;
}

/** True when two prefixes share at least one address (one contains the other). */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & maskOf(p)) >>> 0) === ((b.base & maskOf(p)) >>> 0);
}

/** Broadcast (last) address of a prefix. */
export function lastOf(c: Cidr): number {
  return (c.base + sizeOf(c.prefix) - 1) >>> 0;
}

/**
 * Deterministic MAC from an IPv4 address, Docker style: 02:42 (locally administered,
 * unicast) followed by the 4 address bytes. Same IP → same MAC on every node, so a
 * neighbour entry learnt from gossip never disagrees with the task's real MAC.
 */
export function macFromIp(ip: string): string {
  const n = parseIp(ip);
  const bytes = [0x02, 0x42, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
/** Lower-cases and validates a MAC "aa:bb:cc:dd:ee:ff". */
export function normalizeMac(s: string): string {
  const m = typeof s === 'string' ? s.toLowerCase() : '';
  if (!MAC.test(m)) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid MAC address: ${JSON.stringify(s)}`);
  return m;
}
