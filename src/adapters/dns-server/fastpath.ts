/**
 * Allocation-free pre-parse of the common query shape, for the cache-hit fast path of DnsHandler.
 *
 * Accepts only: QR 0, opcode QUERY, qdcount 1, ancount 0, nscount 0, arcount 0 or 1; a question name of
 * plain labels (1..63 bytes each, ≤ 255 octets in all, no compression); and, when arcount is 1, exactly
 * one OPT record with the root owner, EDNS version 0 and well-framed options ending at the datagram's end.
 * Anything else — malformed, unusual or merely rare — returns false and the caller takes the full path
 * (decodeQuery), which decides FORMERR / NOTIMP / BADVERS / drop. So the fast path can never answer a
 * query the full path would have rejected: every check here is at least as strict as decodeQuery's.
 *
 * The parsed fields land in the reusable `FastQuery` object (one per handler; single-threaded use), so a
 * cache hit costs no allocation besides the reply buffer itself.
 */
import { HEADER_LEN, UDP_DEFAULT_MAX } from '../../core/dns/wire.js';

const OPT = 41;

export class FastQuery {
  /** Offset just past the question name. */
  nameEnd = 0;
  /** Offset just past the question. */
  questionEnd = 0;
  qtype = 0;
  qclass = 0;
  /** The query carried an OPT record. */
  edns = false;
  /** Requestor's UDP payload size (≥ 512; 512 without EDNS). */
  udpSize = UDP_DEFAULT_MAX;
  rd = false;

  /** Parses `buf`; false when it is not the plain shape above (then the fields are meaningless). */
  parse(buf: Uint8Array): boolean {
    const n = buf.length;
    if (n < HEADER_LEN + 5) return false;
    // QR 0 and opcode 0 (bits 15..11 of the flags word).
    if ((buf[2]! & 0xf8) !== 0) return false;
    // qdcount 1, ancount 0, nscount 0, arcount high byte 0.
    if (buf[4] !== 0 || buf[5] !== 1 || buf[6] !== 0 || buf[7] !== 0 || buf[8] !== 0 || buf[9] !== 0 || buf[10] !== 0) return false;
    const ar = buf[11]!;
    if (ar > 1) return false;
    let p = HEADER_LEN;
    let total = 1;
    for (;;) {
      if (p >= n) return false;
      const len = buf[p]!;
      if (len === 0) break;
      if (len > 63) return false;
      total += len + 1;
      if (total > 255) return false;
      p += len + 1;
    }
    const nameEnd = p + 1;
    const qe = nameEnd + 4;
    if (qe > n) return false;
    this.nameEnd = nameEnd;
    this.questionEnd = qe;
    this.qtype = (buf[nameEnd]! << 8) | buf[nameEnd + 1]!;
    this.qclass = (buf[nameEnd + 2]! << 8) | buf[nameEnd + 3]!;
    this.rd = (buf[2]! & 0x01) !== 0;
    if (ar === 0) {
      this.edns = false;
      this.udpSize = UDP_DEFAULT_MAX;
      return qe === n;
    }
    // One OPT: owner root (1 byte), type, class (= UDP size), ttl (ext-rcode, version, flags), rdlen.
    if (qe + 11 > n || buf[qe] !== 0) return false;
    if (((buf[qe + 1]! << 8) | buf[qe + 2]!) !== OPT) return false;
    if (buf[qe + 6] !== 0) return false; // EDNS version ≠ 0 → BADVERS on the full path
    const rdEnd = qe + 11 + ((buf[qe + 9]! << 8) | buf[qe + 10]!);
    if (rdEnd !== n) return false;
    for (let o = qe + 11; o < rdEnd;) {
      if (o + 4 > rdEnd) return false;
      o += 4 + ((buf[o + 2]! << 8) | buf[o + 3]!);
      if (o > rdEnd) return false;
    }
    const size = (buf[qe + 3]! << 8) | buf[qe + 4]!;
    this.edns = true;
    this.udpSize = size < UDP_DEFAULT_MAX ? UDP_DEFAULT_MAX : size;
    return true;
  }

  /** Max reply size (same rule as wire.responseLimit). */
  limit(tcp: boolean, udpCap: number): number {
    if (tcp) return 65535;
    if (!this.edns) return UDP_DEFAULT_MAX;
    return Math.max(UDP_DEFAULT_MAX, Math.min(this.udpSize, udpCap));
  }
}
