/**
 * PROXY protocol headers (haproxy's proxy-protocol.txt, versions 1 and 2): what the agent's
 * userspace proxy writes in front of a published port's stream so the server behind the mesh
 * (nginx `listen 80 proxy_protocol`, haproxy `accept-proxy`) learns the real client address and
 * the address the client connected to. Kernel L4 balancing cannot add bytes to a stream, hence a
 * proxy at all (src/adapters/proxy-listener.ts).
 *
 * Pure: addresses in, bytes out. Also a decoder (`decodeProxyHeader`) of the same subset — TCP
 * over IPv4/IPv6, UNKNOWN / LOCAL, v2 TLVs skipped — used by tests and the bench's receiving end.
 *
 * Edge cases, as the spec says:
 * - v1 is ASCII, at most 107 bytes with CRLF; both addresses of one family (`TCP4` / `TCP6`).
 * - A socket listening on `::` reports IPv4 clients as `::ffff:a.b.c.d`: when both ends are
 *   IPv4-mapped they are written as IPv4 (what the client really used); when only one is, the
 *   IPv4 one is written as IPv4-mapped IPv6 so both ends share a family.
 * - v2 carries the command (PROXY 0x21, LOCAL 0x20), family/transport byte (0x11 TCP4, 0x21 TCP6,
 *   0x00 UNSPEC) and a big-endian length of the address block (12 for IPv4, 36 for IPv6).
 */
import { MeshError } from './errors.js';

export type ProxyVersion = 'v1' | 'v2';
export const PROXY_VERSIONS: readonly ProxyVersion[] = ['v1', 'v2'];

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Longest v1 line, CRLF included (spec §2.1). */
export const V1_MAX_BYTES = 107;

export interface ProxyEndpoint {
  /** IPv4 dotted quad or IPv6 text (also `::ffff:a.b.c.d`). */
  address: string;
  port: number;
}

/** A connection to describe; `null` = PROXY UNKNOWN (v1) / LOCAL (v2): the receiver uses the real peer. */
export interface ProxyConnection {
  source: ProxyEndpoint;
  destination: ProxyEndpoint;
}

const bad = (msg: string): never => {
  throw new MeshError('MESHD_BAD_ARGUMENT', `PROXY protocol: ${msg}`);
};

/** Dotted quad → 4 bytes; null when not a canonical IPv4 address. */
export function ipv4Bytes(s: string): Uint8Array | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

/** IPv6 text (with `::` and an optional trailing dotted quad) → 16 bytes; null when invalid. */
export function ipv6Bytes(s: string): Uint8Array | null {
  if (s.length > 45 || s.includes('%')) return null;
  let head = s;
  let tail4: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    tail4 = ipv4Bytes(s.slice(lastColon + 1));
    if (!tail4) return null;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const group = (g: string): number[] | null => {
    if (g === '') return [];
    const out: number[] = [];
    for (const h of g.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(h)) return null;
      out.push(parseInt(h, 16));
    }
    return out;
  };
  const a = group(halves[0]!);
  const b = halves.length === 2 ? group(halves[1]!) : [];
  if (!a || !b) return null;
  const groups = halves.length === 2 ? [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b] : a;
  if (groups.length !== 8 || (halves.length === 2 && a.length + b.length > 7)) return null;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (tail4) out.set(tail4, 12);
  return out;
}

const isMapped = (b: Uint8Array): boolean => b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;

/**
 * 16 bytes → RFC 5952 text (lower case, longest run of ≥ 2 zero groups as `::`, first one on
 * ties; IPv4-mapped addresses as `::ffff:a.b.c.d`, its §5).
 */
export function formatIpv6(b: Uint8Array): string {
  if (isMapped(b)) return `::ffff:${[...b.slice(12)].join('.')}`;
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

interface Addr {
  family: 4 | 6;
  bytes: Uint8Array;
}

function parseAddr(s: string, what: string): Addr {
  const v4 = ipv4Bytes(s);
  if (v4) return { family: 4, bytes: v4 };
  const v6 = ipv6Bytes(s);
  if (v6) return { family: 6, bytes: v6 };
  return bad(`${what} address ${JSON.stringify(s)} is neither IPv4 nor IPv6`);
}

function checkPort(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 0 || p > 65535) bad(`${what} port ${String(p)} is not 0..65535`);
  return p;
}

/** Both ends in one family (see the header comment for the IPv4-mapped rules). */
export function sameFamily(src: string, dst: string): { family: 4 | 6; src: Uint8Array; dst: Uint8Array } {
  let a = parseAddr(src, 'source');
  let b = parseAddr(dst, 'destination');
  if (a.family === 6 && b.family === 6 && isMapped(a.bytes) && isMapped(b.bytes)) {
    a = { family: 4, bytes: a.bytes.slice(12) };
    b = { family: 4, bytes: b.bytes.slice(12) };
  }
  const mapped = (x: Addr): Addr => (x.family === 6 ? x : { family: 6, bytes: Uint8Array.from([...new Array<number>(10).fill(0), 0xff, 0xff, ...x.bytes]) });
  if (a.family !== b.family) {
    a = mapped(a);
    b = mapped(b);
  }
  return { family: a.family, src: a.bytes, dst: b.bytes };
}

const text = (family: 4 | 6, b: Uint8Array): string => (family === 4 ? [...b].join('.') : formatIpv6(b));

/** The v1 line, e.g. `PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n`; `null` → `PROXY UNKNOWN\r\n`. */
export function encodeV1(c: ProxyConnection | null): Buffer {
  if (c === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const f = sameFamily(c.source.address, c.destination.address);
  const sp = checkPort(c.source.port, 'source');
  const dp = checkPort(c.destination.port, 'destination');
  return Buffer.from(`PROXY TCP${f.family} ${text(f.family, f.src)} ${text(f.family, f.dst)} ${sp} ${dp}\r\n`, 'latin1');
}

/** The v2 header (no TLVs): 28 bytes for IPv4, 52 for IPv6, 16 for LOCAL (`null`). */
export function encodeV2(c: ProxyConnection | null): Buffer {
  if (c === null) return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const f = sameFamily(c.source.address, c.destination.address);
  const alen = f.family === 4 ? 4 : 16;
  const out = Buffer.alloc(16 + 2 * alen + 4);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21; // version 2, command PROXY
  out[13] = f.family === 4 ? 0x11 : 0x21; // AF_INET / AF_INET6, STREAM
  out.writeUInt16BE(2 * alen + 4, 14);
  out.set(f.src, 16);
  out.set(f.dst, 16 + alen);
  out.writeUInt16BE(checkPort(c.source.port, 'source'), 16 + 2 * alen);
  out.writeUInt16BE(checkPort(c.destination.port, 'destination'), 18 + 2 * alen);
  return out;
}

export function encodeProxyHeader(version: ProxyVersion, c: ProxyConnection | null): Buffer {
  return version === 'v1' ? encodeV1(c) : encodeV2(c);
}

export type DecodedHeader =
  | { status: 'incomplete' }
  | { status: 'ok'; version: ProxyVersion; length: number; connection: ProxyConnection | null };

/**
 * Reads a header at the start of `buf`: `incomplete` while more bytes are needed, otherwise the
 * header's length and what it says. Throws MESHD_BAD_ARGUMENT for anything else (not a header,
 * a v1 line over 107 bytes, a bad address or port, an unsupported v2 version/command/family).
 */
export function decodeProxyHeader(buf: Uint8Array): DecodedHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const sigLen = Math.min(b.length, 12);
  if (sigLen > 0 && b.subarray(0, sigLen).equals(V2_SIGNATURE.subarray(0, sigLen))) {
    if (b.length < 16) return { status: 'incomplete' };
    const len = 16 + b.readUInt16BE(14);
    if (b.length < len) return { status: 'incomplete' };
    const vc = b[12]!;
    if (vc >> 4 !== 2) bad(`v2 version ${vc >> 4}`);
    if ((vc & 0x0f) === 0) return { status: 'ok', version: 'v2', length: len, connection: null };
    if ((vc & 0x0f) !== 1) bad(`v2 command ${vc & 0x0f}`);
    const fam = b[13]!;
    const alen = fam === 0x11 ? 4 : fam === 0x21 ? 16 : bad(`v2 family/transport 0x${fam.toString(16)} (only TCP over IPv4/IPv6)`);
    if (len < 16 + 2 * alen + 4) bad(`v2 address block of ${len - 16} bytes is too short`);
    const family = alen === 4 ? 4 : 6;
    return {
      status: 'ok', version: 'v2', length: len,
      connection: {
        source: { address: text(family, b.subarray(16, 16 + alen)), port: b.readUInt16BE(16 + 2 * alen) },
        destination: { address: text(family, b.subarray(16 + alen, 16 + 2 * alen)), port: b.readUInt16BE(18 + 2 * alen) },
      },
    };
  }
  const prefix = 'PROXY ';
  const head = b.subarray(0, Math.min(b.length, prefix.length)).toString('latin1');
  if (!prefix.startsWith(head)) bad('not a PROXY header');
  const end = b.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (b.length >= V1_MAX_BYTES) bad(`v1 line longer than ${V1_MAX_BYTES} bytes`);
    return { status: 'incomplete' };
  }
  if (end + 2 > V1_MAX_BYTES) bad(`v1 line longer than ${V1_MAX_BYTES} bytes`);
  const f = b.subarray(0, end).toString('latin1').split(' ');
  if (f[1] === 'UNKNOWN') return { status: 'ok', version: 'v1', length: end + 2, connection: null };
  if ((f[1] !== 'TCP4' && f[1] !== 'TCP6') || f.length !== 6) bad(`v1 line ${JSON.stringify(b.subarray(0, end).toString('latin1'))}`);
  const want = f[1] === 'TCP4' ? 4 : 6;
  const port = (s: string): number => (/^(0|[1-9]\d{0,4})$/.test(s) && Number(s) <= 65535 ? Number(s) : bad(`v1 port ${JSON.stringify(s)}`));
  for (const a of [f[2]!, f[3]!]) if (parseAddr(a, 'v1').family !== want) bad(`v1 address ${a} is not ${f[1]}`);
  return { status: 'ok', version: 'v1', length: end + 2, connection: { source: { address: f[2]!, port: port(f[4]!) }, destination: { address: f[3]!, port: port(f[5]!) } } };
}
