/**
 * Fast path of the embedded DNS: encoded answers per (networks, question, size class), valid for one
 * registry generation. Any registry change moves the generation, and the first lookup after it drops the
 * whole cache (simple and obviously correct: table changes are rare next to queries).
 *
 * A hit costs one Map lookup and one copy of ~50–500 bytes; then only the 2-byte ID, the RD bit and the
 * question's letter case are patched (patchReply). Copying matters: dgram may still hold the previous
 * reply while we build the next one.
 *
 * Shuffling: answers that spread load (dnsrr services, `tasks.<svc>`, aliases over several services)
 * must come in a fresh random order per query, cached or not. The entry keeps every address (`pool`) and
 * the RDATA offsets of the records actually written (`aOffsets`, fewer than the pool when UDP truncated
 * the answer); each hit draws a uniform random arrangement of `aOffsets.length` addresses out of the pool
 * (partial Fisher–Yates), so a truncated answer still hands out every address over time.
 */
import type { Rng } from '../../core/clock.js';

export interface CachedAnswer {
  readonly buf: Buffer;
  readonly rcode: number;
  /** Every address of a load-spreading answer (4 bytes each), or undefined for fixed answers. */
  readonly pool: Uint32Array | undefined;
  readonly aOffsets: readonly number[];
}

export interface AnswerCacheStats {
  hits: number;
  misses: number;
  /** Times the whole cache was dropped because the registry generation moved. */
  flushes: number;
  /** Entries evicted because the cache was full. */
  evictions: number;
}

export class AnswerCache {
  private readonly map = new Map<string, CachedAnswer>();
  private gen = -1;
  readonly stats: AnswerCacheStats = { hits: 0, misses: 0, flushes: 0, evictions: 0 };

  /** @param maxEntries bound on entries; the oldest entry goes first when full (insertion order). */
  constructor(private readonly maxEntries: number, private readonly rng: Rng) {}

  get size(): number {
    return this.map.size;
  }

  /** Returns a fresh copy of the cached reply (shuffled when needed) or undefined. */
  get(key: string, generation: number): { buf: Buffer; rcode: number } | undefined {
    if (generation !== this.gen) {
      if (this.map.size > 0) this.stats.flushes++;
      this.map.clear();
      this.gen = generation;
      this.stats.misses++;
      return undefined;
    }
    const e = this.map.get(key);
    if (!e) {
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    const out = Buffer.allocUnsafe(e.buf.length);
    e.buf.copy(out);
    if (e.pool) shuffleInto(out, e.pool, e.aOffsets, this.rng);
    return { buf: out, rcode: e.rcode };
  }

  set(key: string, generation: number, entry: CachedAnswer): void {
    if (generation !== this.gen) {
      this.map.clear();
      this.gen = generation;
    }
    if (this.maxEntries <= 0) return;
    if (this.map.size >= this.maxEntries) {
      const oldest = this.map.keys().next();
      if (!oldest.done) {
        this.map.delete(oldest.value);
        this.stats.evictions++;
      }
    }
    this.map.set(key, entry);
  }

  clear(): void {
    this.map.clear();
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
