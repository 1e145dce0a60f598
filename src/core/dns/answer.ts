/**
 * Encoder of our answers for the embedded DNS (split from wire.ts, which decodes queries and writes errors).
 *
 * It writes our answers: the question is copied byte for byte from the query (so 0x20 case
 * randomisation round-trips), every answer owner name is a compression pointer to it (0xC00C), PTR targets
 * are compressed against names already written (SRV targets are not, RFC 2782; additional owner names
 * point at them), and the whole message is cut to `maxSize` by dropping whole trailing answer records
 * and setting TC (RFC 2181 §9) — additional records that do not fit are dropped without TC; the OPT
 * record is always kept.
 */
import { parseIp6 } from '../ipam/addr6.js';
import { QTYPE, type AdditionalRecord, type DnsRecord } from './resolver.js';
import { flagsWord, HEADER_LEN, OPT_LEN, writeOpt, type Query } from './wire.js';

export interface Encoded {
  readonly buf: Buffer;
  readonly truncated: boolean;
  /** Answer records actually written. */
  readonly answers: number;
  /** Offsets of the 4-byte RDATA of each written A record (lets callers reorder addresses in place). */
  readonly aOffsets: readonly number[];
}

function ipBytes(out: Buffer, p: number, ip: string): void {
  let octet = 0;
  let k = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) {
      out[p + k++] = octet;
      octet = 0;
    } else octet = octet * 10 + (c - 0x30);
  }
  out[p + k] = octet;
}

/** The 16 bytes of an IPv6 address (AAAA RDATA). */
function ip6Bytes(out: Buffer, p: number, ip: string): void {
  const n = parseIp6(ip);
  for (let i = 0; i < 16; i++) out[p + i] = Number((n >> BigInt((15 - i) * 8)) & 0xffn);
}

/**
 * Writes `name` (dotted, no trailing dot) with compression against `table` (lowercased suffix → offset).
 * `compress: false` (SRV targets, RFC 2782) writes every label but still records the suffixes, so later
 * owner names (the additional section) can point at them.
 */
function writeName(out: Buffer, p: number, name: string, table: Map<string, number>, compress = true): number {
  const labels = name.length === 0 ? [] : name.split('.');
  for (let i = 0; i < labels.length; i++) {
    const suffix = labels.slice(i).join('.').toLowerCase();
    const at = compress ? table.get(suffix) : undefined;
    if (at !== undefined) {
      out.writeUInt16BE(0xc000 | at, p);
      return p + 2;
    }
    if (p < 0x3fff && !table.has(suffix)) table.set(suffix, p);
    const l = labels[i]!;
    out[p] = l.length;
    out.write(l, p + 1, 'latin1');
    p += 1 + l.length;
  }
  out[p] = 0;
  return p + 1;
}

/** Upper bound of the wire size of a name (uncompressed). */
function nameLen(name: string): number {
  return name.length === 0 ? 1 : name.length + 2;
}

export interface AnswerInput {
  /** The query buffer and its decoded form (question copied from it). */
  readonly query: Uint8Array;
  readonly q: Query;
  readonly rcode: number;
  readonly records: readonly DnsRecord[];
  /**
   * Additional-section A records (SRV targets' addresses). Those that do not fit are left out without
   * setting TC (RFC 2181 §9: TC only when required data was dropped); the client can ask for them.
   */
  readonly additional?: readonly AdditionalRecord[];
  /** TTL in seconds for every record. */
  readonly ttlSec: number;
  /** Size limit for the whole message (see responseLimit). */
  readonly maxSize: number;
  /** UDP payload size we advertise in our OPT (only written when the query had EDNS). */
  readonly ednsUdpSize: number;
}

/** Writes TYPE, CLASS IN and TTL of a record at `p` (after its owner name); returns the RDLENGTH offset. */
function writeRrHead(out: Buffer, p: number, type: number, ttlSec: number): number {
  out.writeUInt16BE(type, p);
  out.writeUInt16BE(1, p + 2);
  out.writeUInt32BE(ttlSec >>> 0, p + 4);
  return p + 8;
}

/** Writes one answer record (owner: a pointer to the question) at `p`; returns the offset after it. */
function writeAnswer(out: Buffer, p: number, r: DnsRecord, ttlSec: number, table: Map<string, number>): number {
  out[p] = 0xc0;
  out[p + 1] = HEADER_LEN;
  const rdlen = writeRrHead(out, p + 2, r.type, ttlSec);
  if (r.type === QTYPE.A) {
    out.writeUInt16BE(4, rdlen);
    ipBytes(out, rdlen + 2, r.data);
    return rdlen + 6;
  }
  if (r.type === QTYPE.AAAA) {
    out.writeUInt16BE(16, rdlen);
    ip6Bytes(out, rdlen + 2, r.data);
    return rdlen + 18;
  }
  let end: number;
  if (r.type === QTYPE.SRV) {
    out.writeUInt16BE(r.priority, rdlen + 2);
    out.writeUInt16BE(r.weight, rdlen + 4);
    out.writeUInt16BE(r.port, rdlen + 6);
    end = writeName(out, rdlen + 8, r.data, table, false);
  } else {
    end = writeName(out, rdlen + 2, r.data, table);
  }
  out.writeUInt16BE(end - rdlen - 2, rdlen);
  return end;
}

/** Encodes an authoritative answer (AA set) — or NODATA / NXDOMAIN when `records` is empty — truncating to maxSize. */
export function encodeAnswer(a: AnswerInput): Encoded {
  const { q } = a;
  const qlen = q.questionEnd - HEADER_LEN;
  const optLen = q.edns ? OPT_LEN : 0;
  let size = HEADER_LEN + qlen + optLen;
  for (const r of a.records) size += 12 + (r.type === QTYPE.A ? 4 : r.type === QTYPE.AAAA ? 16 : r.type === QTYPE.SRV ? 6 + nameLen(r.data) : nameLen(r.data));
  for (const r of a.additional ?? []) size += nameLen(r.name) + 14;
  const out = Buffer.allocUnsafe(size);
  out.set(a.query.subarray(HEADER_LEN, q.questionEnd), HEADER_LEN);
  const table = new Map<string, number>();
  table.set(questionNameForTable(a.query, q), HEADER_LEN);
  let p = HEADER_LEN + qlen;
  const budget = Math.max(HEADER_LEN + qlen + optLen, a.maxSize) - optLen;
  let n = 0;
  let truncated = false;
  const aOffsets: number[] = [];
  for (const r of a.records) {
    const snapshot = r.type === QTYPE.A || r.type === QTYPE.AAAA ? undefined : new Map(table);
    const end = writeAnswer(out, p, r, a.ttlSec, table);
    if (end > budget) {
      if (snapshot) {
        table.clear();
        for (const [k, v] of snapshot) table.set(k, v);
      }
      truncated = true;
      break;
    }
    if (r.type === QTYPE.A) aOffsets.push(p + 12);
    p = end;
    n++;
  }
  // Additional A records only for the answers written (an SRV whose record was cut has no target here).
  let ar = 0;
  if (!truncated) {
    for (const r of a.additional ?? []) {
      const end = writeName(out, p, r.name, table);
      const rdlen = writeRrHead(out, end, QTYPE.A, a.ttlSec);
      out.writeUInt16BE(4, rdlen);
      ipBytes(out, rdlen + 2, r.data);
      if (rdlen + 6 > budget) break; // the table may keep offsets past `p`: nothing is written after this
      p = rdlen + 6;
      ar++;
    }
  }
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(flagsWord(0, true, truncated, q.rd, a.rcode), 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(n, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(ar + (q.edns ? 1 : 0), 10);
  if (q.edns) p = writeOpt(out, p, a.ednsUdpSize, 0);
  return { buf: out.subarray(0, p), truncated, answers: n, aOffsets };
}

/** Lowercased dotted question name for the compression table ('' root; raw latin1 for odd bytes). */
function questionNameForTable(buf: Uint8Array, q: Query): string {
  const labels: string[] = [];
  let p = HEADER_LEN;
  while (p < q.nameEnd - 1) {
    const len = buf[p]!;
    labels.push(Buffer.from(buf.subarray(p + 1, p + 1 + len)).toString('latin1').toLowerCase());
    p += len + 1;
  }
  return labels.join('.');
}
