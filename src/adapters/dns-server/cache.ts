/**
 * Fast path of the embedded DNS: encoded answers per (networks, question, size class), valid for one
 * registry generation. Any registry change moves the generation, and the first lookup after it drops the
 * whole cache (simple and obviously correct: table changes are rare next to queries).
 *
 * No strings on the hot path: the key is a 32-bit FNV-1a hash of the question bytes (name lowercased,
 * type, class), the size class (reply limit + whether the query had EDNS) and the networks' hash; entries
 * with the same hash are chained and checked byte for byte, so a collision costs a compare, never a wrong
 * answer. A hit costs one Map lookup, one compare and one copy of ~50–500 bytes; then only the 2-byte ID,
 * the RD bit and the question's letter case are patched. Copying matters: dgram may still hold the
 * previous reply while we build the next one.
 *
 * Shuffling: answers that spread load (dnsrr services, `tasks.<svc>`, aliases over several services)
 * must come in a fresh random order per query, cached or not. The entry keeps every address (`pool`) and
 * the RDATA offsets of the records actually written (`aOffsets`, fewer than the pool when UDP truncated
 * the answer); each hit draws a uniform random arrangement of `aOffsets.length` addresses out of the pool
 * (partial Fisher–Yates), so a truncated answer still hands out every address over time.
 */
import type { Rng } from '../../core/clock.js';
import { HEADER_LEN, type Query } from '../../core/dns/wire.js';

export interface CachedAnswer {
  readonly buf: Buffer;
  readonly rcode: number;
  /** Every address of a load-spreading answer (4 bytes each), or undefined for fixed answers. */
  readonly pool: Uint32Array | undefined;
  readonly aOffsets: readonly number[];
}

/** The networks of an asking sandbox, with a precomputed hash. */
export interface NetKey {
  readonly key: string;
  readonly hash: number;
}

export interface AnswerCacheStats {
  hits: number;
  misses: number;
  /** Times the whole cache was dropped because the registry generation moved. */
  flushes: number;
  /** Entries evicted because the cache was full. */
  evictions: number;
}

/**
 * A cached answer. A class, not an object literal built by spreading: every entry then has one fixed
 * hidden class, so the hot loop's property reads are monomorphic (spread-built literals measured ~4×
 * slower per hit here, the field checks dominating the whole handler).
 */
class Entry implements CachedAnswer {
  constructor(
    readonly buf: Buffer,
    readonly rcode: number,
    readonly pool: Uint32Array | undefined,
    readonly aOffsets: readonly number[],
    readonly net: string,
    readonly limit: number,
    readonly edns: boolean,
    /** Lowercased question bytes (name, type, class). */
    readonly question: Buffer,
    public next: Entry | undefined,
  ) {}
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

export function fnv1a(s: string): number {
  let h = FNV_OFFSET;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ (s.charCodeAt(i) & 0xff), FNV_PRIME);
  return h >>> 0;
}

export function netKey(networks: readonly string[]): NetKey {
  const key = networks.join(',');
  return { key, hash: fnv1a(key) };
}

/** Hash of the question (ASCII-lowercased name, type, class), the size class and the networks. */
export function questionHash(buf: Uint8Array, q: Query, limit: number, net: NetKey): number {
  return questionHashRaw(buf, q.nameEnd, q.questionEnd, limit, q.edns !== undefined, net.hash);
}

/** questionHash from the raw offsets (the fast path has no Query object). */
export function questionHashRaw(buf: Uint8Array, nameEnd: number, questionEnd: number, limit: number, edns: boolean, netHash: number): number {
  let h = netHash ^ Math.imul(limit + (edns ? 0x10000 : 0), FNV_PRIME);
  let i = HEADER_LEN;
  for (; i < nameEnd; i++) {
    let c = buf[i]!;
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  for (; i < questionEnd; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
  return h >>> 0;
}

function sameQuestionLower(e: Entry, buf: Uint8Array, nameEnd: number, questionEnd: number): boolean {
  const s = e.question;
  if (s.length !== questionEnd - HEADER_LEN) return false;
  let i = HEADER_LEN;
  for (; i < nameEnd; i++) {
    let c = buf[i]!;
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== s[i - HEADER_LEN]) return false;
  }
  for (; i < questionEnd; i++) if (buf[i] !== s[i - HEADER_LEN]) return false;
  return true;
}

export class AnswerCache {
  private readonly map = new Map<number, Entry>();
  private gen = -1;
  private count = 0;
  /** rcode of the reply the last successful `get` returned. */
  lastRcode = 0;
  readonly stats: AnswerCacheStats = { hits: 0, misses: 0, flushes: 0, evictions: 0 };

  /** @param maxEntries bound on entries; the oldest hash chain goes first when full (insertion order). */
  constructor(private readonly maxEntries: number, private readonly rng: Rng) {}

  get size(): number {
    return this.count;
  }

  /**
   * The cached reply for this query, already copied, shuffled (when needed) and patched for it (ID, RD,
   * question case); undefined on a miss. `hash` is questionHash(query, q, limit, net).
   */
  get(hash: number, net: NetKey, limit: number, query: Uint8Array, q: Query, generation: number): Buffer | undefined {
    const out = this.lookup(hash, net, limit, query, q.nameEnd, q.questionEnd, q.edns !== undefined, q.rd, generation);
    if (!out) this.stats.misses++;
    return out;
  }

  /**
   * The allocation-free core of `get` (the fast path calls it with raw offsets): the patched copy on a
   * hit, undefined on a miss — misses are not counted here (the caller's full path counts them once).
   */
  lookup(hash: number, net: NetKey, limit: number, query: Uint8Array, nameEnd: number, questionEnd: number, edns: boolean, rd: boolean, generation: number): Buffer | undefined {
    if (generation !== this.gen) {
      if (this.count > 0) this.stats.flushes++;
      this.map.clear();
      this.count = 0;
      this.gen = generation;
      return undefined;
    }
    let e = this.map.get(hash);
    while (e && !(e.limit === limit && e.edns === edns && e.net === net.key && sameQuestionLower(e, query, nameEnd, questionEnd))) e = e.next;
    if (!e) return undefined;
    this.stats.hits++;
    const out = Buffer.allocUnsafe(e.buf.length);
    e.buf.copy(out);
    if (e.pool) shuffleInto(out, e.pool, e.aOffsets, this.rng);
    patchReplyRaw(out, query, nameEnd, rd);
    this.lastRcode = e.rcode;
    return out;
  }

  set(hash: number, net: NetKey, limit: number, query: Uint8Array, q: Query, generation: number, answer: CachedAnswer): void {
    if (generation !== this.gen) {
      this.map.clear();
      this.count = 0;
      this.gen = generation;
    }
    if (this.maxEntries <= 0) return;
    if (this.count >= this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) {
        for (let x = this.map.get(oldest.value); x; x = x.next) this.count--;
        this.map.delete(oldest.value);
        this.stats.evictions++;
      }
    }
    const question = Buffer.from(query.subarray(HEADER_LEN, q.questionEnd));
    for (let i = 0; i < q.nameEnd - HEADER_LEN; i++) if (question[i]! >= 0x41 && question[i]! <= 0x5a) question[i]! += 0x20;
    const entry = new Entry(Buffer.from(answer.buf), answer.rcode, answer.pool, answer.aOffsets, net.key, limit, q.edns !== undefined, question, this.map.get(hash));
    this.map.set(hash, entry);
    this.count++;
  }

  clear(): void {
    this.map.clear();
    this.count = 0;
  }
}

/** Packs dotted IPv4 strings into uint32 values. */
export function ipPool(ips: readonly string[]): Uint32Array {
  const out = new Uint32Array(ips.length);
  ips.forEach((ip, i) => {
    const p = ip.split('.');
    out[i] = ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
  });
  return out;
}

/** Writes a uniform random arrangement of `offsets.length` addresses from `pool` into `out` at `offsets`. */
export function shuffleInto(out: Buffer, pool: Uint32Array, offsets: readonly number[], rng: Rng): void {
  const k = offsets.length;
  if (k === 0) return;
  const a = pool.slice();
  const n = a.length;
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rng() * (n - i));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
    out.writeUInt32BE(a[i]!, offsets[i]!);
  }
}

/** Patches a cached reply for a new query: ID, RD bit and the question's original letter case. */
function patchReplyRaw(reply: Buffer, query: Uint8Array, nameEnd: number, rd: boolean): void {
  reply[0] = query[0]!;
  reply[1] = query[1]!;
  reply[2] = (reply[2]! & ~0x01) | (rd ? 0x01 : 0);
  for (let i = HEADER_LEN; i < nameEnd; i++) reply[i] = query[i]!;
}
