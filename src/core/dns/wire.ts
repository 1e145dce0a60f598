/**
 * Strict, allocation-light DNS wire codec for the embedded server's hot path (RFC 1035, RFC 6891).
 *
 * Decoding handles queries only and decides, in this order:
 *   < 12 bytes (short header)                     → drop (nothing to answer to)
 *   QR set (it is a response)                      → drop (answering responses invites reflection loops)
 *   opcode ≠ QUERY                                 → NOTIMP
 *   qdcount ≠ 1, ancount ≠ 0 or nscount ≠ 0        → FORMERR
 *   question: truncated, label type 01/10 (length byte 64..191), name > 255 octets, or any compression
 *     pointer (the first name of a message can only point into itself or the header: always a loop or junk)
 *                                                  → FORMERR
 *   additional records: bad names (pointer loops: every pointer must jump strictly backwards past the
 *     previous one; out-of-bounds pointers), truncated RRs, an OPT whose owner is not the root, two OPTs,
 *     malformed EDNS options, bytes after the last record → FORMERR
 *   EDNS version ≠ 0                               → BADVERS (extended rcode 16, with our OPT)
 * Error replies carry the header only (qdcount 0), plus an OPT for BADVERS.
 *
 * Encoding of answers lives in answer.ts; error replies and reply patching are here.
 */
import { QTYPE } from './resolver.js';

export const RCODE = Object.freeze({ NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 });

export const HEADER_LEN = 12;
/** Classic UDP limit without EDNS (RFC 1035 §4.2.1). */
export const UDP_DEFAULT_MAX = 512;
/** Max UDP payload we advertise/accept by default: the DNS flag day 2020 value, avoids IP fragmentation. */
export const EDNS_DEFAULT_MAX = 1232;
export const OPT_LEN = 11;

export interface Edns {
  /** Requestor's UDP payload size (values < 512 read as 512, RFC 6891 §6.2.3). */
  readonly udpSize: number;
  readonly version: number;
  readonly dnssecOk: boolean;
}

export interface Query {
  readonly id: number;
  /** Raw flags word of the query. */
  readonly flags: number;
  readonly rd: boolean;
  /** Offset just past the question name (the name is buf[12, nameEnd)). */
  readonly nameEnd: number;
  /** Offset just past the question (the question is buf[12, questionEnd)). */
  readonly questionEnd: number;
  readonly qtype: number;
  readonly qclass: number;
  readonly edns: Edns | undefined;
}

export type DropReason = 'short-header' | 'qr-set';

export type DecodeResult =
  | { readonly ok: true; readonly query: Query }
  | { readonly ok: false; readonly drop: true; readonly reason: DropReason }
  | { readonly ok: false; readonly drop: false; readonly rcode: number; readonly reason: string; readonly id: number; readonly flags: number };

/** Internal parse failure (never escapes this module). */
class Malformed {
  constructor(readonly reason: string) {}
}

/** Skips a (possibly compressed) name starting at `pos`, validating it; returns the offset after it. */
function skipName(buf: Uint8Array, pos: number): number {
  let p = pos;
  let end = -1;
  let limit = p; // every pointer must jump strictly before the previous jump target (no loops)
  let total = 1;
  for (let hops = 0; ; hops++) {
    if (p >= buf.length) throw new Malformed('name runs past the end');
    const len = buf[p]!;
    if (len === 0) {
      return end === -1 ? p + 1 : end;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (p + 1 >= buf.length) throw new Malformed('truncated pointer');
      const target = ((len & 0x3f) << 8) | buf[p + 1]!;
      if (target < HEADER_LEN || target >= limit) throw new Malformed('compression pointer loop or out of bounds');
      if (end === -1) end = p + 2;
      limit = target;
      p = target;
      if (hops > 127) throw new Malformed('too many compression pointers');
      continue;
    }
    if (kind !== 0) throw new Malformed('label type 01/10 (label longer than 63)');
    total += len + 1;
    if (total > 255) throw new Malformed('name longer than 255 octets');
    p += len + 1;
  }
}

/** Decodes and validates a query. Never throws. */
export function decodeQuery(buf: Uint8Array): DecodeResult {
  if (buf.length < HEADER_LEN) return { ok: false, drop: true, reason: 'short-header' };
  const id = (buf[0]! << 8) | buf[1]!;
  const flags = (buf[2]! << 8) | buf[3]!;
  if (flags & 0x8000) return { ok: false, drop: true, reason: 'qr-set' };
  const fail = (rcode: number, reason: string): DecodeResult => ({ ok: false, drop: false, rcode, reason, id, flags });
  if ((flags >> 11) & 0xf) return fail(RCODE.NOTIMP, `opcode ${(flags >> 11) & 0xf}`);
  const qd = (buf[4]! << 8) | buf[5]!;
  const an = (buf[6]! << 8) | buf[7]!;
  const ns = (buf[8]! << 8) | buf[9]!;
  const ar = (buf[10]! << 8) | buf[11]!;
  if (qd !== 1) return fail(RCODE.FORMERR, `qdcount ${qd}`);
  if (an !== 0 || ns !== 0) return fail(RCODE.FORMERR, 'answer/authority records in a query');
  // Question name: uncompressed labels only.
  let p = HEADER_LEN;
  let total = 1;
  for (;;) {
    if (p >= buf.length) return fail(RCODE.FORMERR, 'question name runs past the end');
    const len = buf[p]!;
    if (len === 0) break;
    if (len & 0xc0) return fail(RCODE.FORMERR, (len & 0xc0) === 0xc0 ? 'compression pointer in the question name' : 'label type 01/10 (label longer than 63)');
    total += len + 1;
    if (total > 255) return fail(RCODE.FORMERR, 'name longer than 255 octets');
    p += len + 1;
  }
  const nameEnd = p + 1;
  if (nameEnd + 4 > buf.length) return fail(RCODE.FORMERR, 'truncated question');
  const qtype = (buf[nameEnd]! << 8) | buf[nameEnd + 1]!;
  const qclass = (buf[nameEnd + 2]! << 8) | buf[nameEnd + 3]!;
  const questionEnd = nameEnd + 4;
  let edns: Edns | undefined;
  p = questionEnd;
  try {
    for (let i = 0; i < ar; i++) {
      const ownerStart = p;
      p = skipName(buf, p);
      if (p + 10 > buf.length) throw new Malformed('truncated resource record');
      const type = (buf[p]! << 8) | buf[p + 1]!;
      const cls = (buf[p + 2]! << 8) | buf[p + 3]!;
      const ttl = ((buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!) >>> 0;
      const rdlen = (buf[p + 8]! << 8) | buf[p + 9]!;
      p += 10;
      if (p + rdlen > buf.length) throw new Malformed('resource record data runs past the end');
      if (type === QTYPE.OPT) {
        if (edns) throw new Malformed('more than one OPT record');
        if (buf[ownerStart] !== 0) throw new Malformed('OPT owner is not the root');
        for (let o = p; o < p + rdlen;) {
          if (o + 4 > p + rdlen) throw new Malformed('truncated EDNS option');
          const olen = (buf[o + 2]! << 8) | buf[o + 3]!;
          o += 4 + olen;
          if (o > p + rdlen) throw new Malformed('EDNS option runs past the OPT data');
        }
        edns = { udpSize: Math.max(UDP_DEFAULT_MAX, cls), version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0 };
      }
      p += rdlen;
    }
  } catch (e) {
    if (e instanceof Malformed) return fail(RCODE.FORMERR, e.reason);
    throw e;
  }
  if (p !== buf.length) return fail(RCODE.FORMERR, 'bytes after the last record');
  if (edns && edns.version !== 0) return fail(RCODE.BADVERS, `EDNS version ${edns.version}`);
  return { ok: true, query: { id, flags, rd: (flags & 0x0100) !== 0, nameEnd, questionEnd, qtype, qclass, edns } };
}

/**
 * Text form of the question name: lowercased, dotted, no trailing dot ('' for the root); null when a
 * label holds a byte outside printable ASCII or a dot (such a name can never be one of ours).
 */
export function questionName(buf: Uint8Array, q: Query): string | null {
  let s = '';
  let p = HEADER_LEN;
  while (p < q.nameEnd - 1) {
    const len = buf[p]!;
    if (s.length > 0) s += '.';
    for (let i = p + 1; i <= p + len; i++) {
      let c = buf[i]!;
      if (c <= 0x20 || c >= 0x7f || c === 0x2e) return null;
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      s += String.fromCharCode(c);
    }
    p += len + 1;
  }
  return s;
}

/** Max response size for a query: TCP 65535; UDP 512 without EDNS, else the requestor's size capped at `udpCap`. */
export function responseLimit(q: Query, tcp: boolean, udpCap: number = EDNS_DEFAULT_MAX): number {
  if (tcp) return 65535;
  if (!q.edns) return UDP_DEFAULT_MAX;
  return Math.max(UDP_DEFAULT_MAX, Math.min(q.edns.udpSize, udpCap));
}

/** Flags word of a reply (QR and RA set); shared with answer.ts. */
export function flagsWord(opcode: number, aa: boolean, tc: boolean, rd: boolean, rcode: number): number {
  return 0x8000 | ((opcode & 0xf) << 11) | (aa ? 0x0400 : 0) | (tc ? 0x0200 : 0) | (rd ? 0x0100 : 0) | 0x0080 | (rcode & 0xf);
}

/** Writes our OPT record at `p`; returns the offset after it (shared with answer.ts). */
export function writeOpt(out: Buffer, p: number, udpSize: number, extRcode: number): number {
  out[p] = 0; // root owner
  out.writeUInt16BE(QTYPE.OPT, p + 1);
  out.writeUInt16BE(udpSize, p + 3);
  out.writeUInt32BE(((extRcode & 0xff) << 24) >>> 0, p + 5); // version 0, DO 0
  out.writeUInt16BE(0, p + 9);
  return p + OPT_LEN;
}

/** Header-only error reply (FORMERR / NOTIMP / SERVFAIL / REFUSED / BADVERS). */
export function encodeError(id: number, queryFlags: number, rcode: number, ednsUdpSize?: number): Buffer {
  const withOpt = rcode > 15 || ednsUdpSize !== undefined;
  const out = Buffer.alloc(HEADER_LEN + (withOpt ? OPT_LEN : 0));
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(flagsWord((queryFlags >> 11) & 0xf, false, false, (queryFlags & 0x0100) !== 0, rcode & 0xf), 2);
  if (withOpt) {
    out.writeUInt16BE(1, 10);
    writeOpt(out, HEADER_LEN, ednsUdpSize ?? EDNS_DEFAULT_MAX, rcode >> 4);
  }
  return out;
}

/** Error reply that echoes the question (SERVFAIL / REFUSED for a well-formed query). */
export function encodeQueryError(buf: Uint8Array, q: Query, rcode: number, ednsUdpSize: number): Buffer {
  const qlen = q.questionEnd - HEADER_LEN;
  const out = Buffer.alloc(HEADER_LEN + qlen + (q.edns ? OPT_LEN : 0));
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(flagsWord(0, false, false, q.rd, rcode), 2);
  out.writeUInt16BE(1, 4);
  out.set(buf.subarray(HEADER_LEN, q.questionEnd), HEADER_LEN);
  if (q.edns) {
    out.writeUInt16BE(1, 10);
    writeOpt(out, HEADER_LEN + qlen, ednsUdpSize, 0);
  }
  return out;
}

/** Patches a cached reply for a new query: ID, RD bit and the question's original letter case. */
export function patchReply(reply: Buffer, query: Uint8Array, q: Query): void {
  reply[0] = query[0]!;
  reply[1] = query[1]!;
  reply[2] = (reply[2]! & ~0x01) | (q.rd ? 0x01 : 0);
  for (let i = HEADER_LEN; i < q.nameEnd; i++) reply[i] = query[i]!; // names are short: a loop beats subarray+set
}

/** Reads the ID of a message (caller checked length ≥ 2). */
export function readId(buf: Uint8Array): number {
  return (buf[0]! << 8) | buf[1]!;
}

export function writeId(buf: Uint8Array, id: number): void {
  buf[0] = (id >> 8) & 0xff;
  buf[1] = id & 0xff;
}

/**
 * True when `reply` is a response whose question equals the question of `query` (names compared
 * case-insensitively): how the forwarder rejects spoofed or stray upstream packets.
 */
export function sameQuestion(reply: Uint8Array, query: Uint8Array, q: Query): boolean {
  if (reply.length < q.questionEnd || !(reply[2]! & 0x80)) return false;
  if (((reply[4]! << 8) | reply[5]!) !== 1) return false;
  for (let i = HEADER_LEN; i < q.questionEnd; i++) {
    let x = reply[i]!;
    let y = query[i]!;
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}
