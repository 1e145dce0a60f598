/**
 * The broadcast queue against a reference model: a sort of the whole queue on every take and on every eviction
 * (the pre-#18 implementation's shape), with the send rule of issue 18 §1 (relays' bounded share first, then
 * local updates, then relays; fewest transmits then newest within each; eviction by that order whatever the
 * origin). Random op sequences (queue with key reuse,
 * invalidate, take with varying budgets / caps / limits / network filters / oversizeAlone, prune) must give
 * the same messages in the same order, the same size and the same eviction count. Also prints a
 * micro-measure at 4,096 queued (ops/s; informational, not asserted: the machine is shared).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BroadcastQueue, WALK_MISS_LIMIT, type BroadcastItem } from '../../../src/core/gossip/broadcast.js';
import { seededRng as rng } from '../../../src/core/clock.js';

interface RefQueued extends BroadcastItem { transmits: number; id: number }

/** O(n log n) per call, obviously right. */
class RefQueue {
  readonly byKey = new Map<string, RefQueued>();
  private nextId = 0;
  evicted = 0;
  constructor(private readonly maxItems: number) {}
  get size(): number { return this.byKey.size; }
  queue(item: BroadcastItem): void {
    this.byKey.delete(item.key);
    this.byKey.set(item.key, { ...item, transmits: 0, id: this.nextId++ });
    if (this.byKey.size > this.maxItems) this.prune(this.maxItems);
  }
  invalidate(key: string): void { this.byKey.delete(key); }
  prune(max: number): void {
    if (this.byKey.size <= max) return;
    const all = this.ordered((q) => q);
    for (let i = max; i < all.length; i++) (this.byKey.delete(all[i]!.key), this.evicted++);
  }
  /** Send order (fewest transmits, newest), of the messages `which` keeps. */
  private ordered(which: (q: RefQueued) => RefQueued | false): RefQueued[] {
    const all = [...this.byKey.values()].filter((q) => which(q));
    all.sort((a, b) => a.transmits - b.transmits || b.id - a.id);
    return all;
  }
  take(budget: number, over: number, limit: number, maxItems: number, accept: (b: BroadcastItem) => boolean = () => true, alone = false): Uint8Array[] {
    if (this.byKey.size === 0 || budget <= 0) return [];
    const picked: RefQueued[] = [];
    let used = 0;
    const walk = (list: RefQueued[], upTo: number): RefQueued[] => {
      const got: RefQueued[] = [];
      let misses = 0;
      for (const q of list) {
        if (picked.length >= maxItems || misses >= WALK_MISS_LIMIT) break;
        if (picked.includes(q)) continue;
        const cost = q.bytes.length + over;
        if (used + cost > upTo || !accept(q)) {
          misses++;
          continue;
        }
        misses = 0;
        used += cost;
        picked.push(q);
        got.push(q);
      }
      return got;
    };
    const relays = this.ordered((q) => !q.local && q);
    const locals = this.ordered((q) => q.local && q);
    const r1 = walk(relays, Math.floor(budget * 0.5));
    const l = walk(locals, budget);
    const r2 = walk(relays, budget);
    let out = [...l, ...[...r1, ...r2].sort((a, b) => a.transmits - b.transmits || b.id - a.id)];
    if (out.length === 0 && alone && maxItems > 0) {
      const first = [...locals, ...relays].find((q) => accept(q));
      if (first) out = [first];
    }
    for (const q of out) if (++q.transmits >= limit) this.byKey.delete(q.key);
    return out.map((q) => q.bytes);
  }
}

/** Message bytes carry a serial number so equal-looking messages are told apart. */
let serial = 0;
function msg(len: number): Uint8Array {
  const u = new Uint8Array(Math.max(4, len));
  new DataView(u.buffer).setUint32(0, serial++);
  return u;
}
const ids = (l: Uint8Array[]): number[] => l.map((u) => new DataView(u.buffer, u.byteOffset).getUint32(0));

function runSequence(seed: number, ops: number): void {
  const r = rng(seed);
  const cap = 8 + Math.floor(r() * 120);
  const keys = 4 + Math.floor(r() * 200);
  const nets = ['a', 'b', 'c'];
  const q = new BroadcastQueue(cap);
  const ref = new RefQueue(cap);
  for (let i = 0; i < ops; i++) {
    const op = r();
    const where = `seed ${seed} op ${i}`;
    if (op < 0.55) {
      const netPick = r();
      const item: BroadcastItem = {
        key: `k${Math.floor(r() * keys)}`,
        // mostly small records, a few large (incl. over one packet)
        bytes: msg(r() < 0.9 ? 4 + Math.floor(r() * 200) : 300 + Math.floor(r() * 2000)),
        local: r() < 0.3,
        ...(netPick < 0.5 ? {} : { network: nets[Math.floor(netPick * 6) % 3]! }),
      };
      q.queue(item);
      ref.queue(item);
    } else if (op < 0.62) {
      const key = `k${Math.floor(r() * keys)}`;
      q.invalidate(key);
      ref.invalidate(key);
    } else if (op < 0.97) {
      const budget = Math.floor(r() * 1500) - 20;
      const over = Math.floor(r() * 4);
      const limit = 1 + Math.floor(r() * 6);
      const maxItems = 1 + Math.floor(r() * 64);
      const allowed = new Set(nets.filter(() => r() < 0.5));
      const accept = r() < 0.5 ? undefined : (b: BroadcastItem) => b.network === undefined || allowed.has(b.network);
      const alone = r() < 0.5;
      assert.deepEqual(ids(q.take(budget, over, limit, maxItems, accept, alone)),
        ids(ref.take(budget, over, limit, maxItems, accept, alone)), where);
    } else {
      const max = Math.floor(r() * cap);
      q.prune(max);
      ref.prune(max);
    }
    assert.equal(q.size, ref.size, `${where}: size`);
    assert.equal(q.evicted, ref.evicted, `${where}: evicted`);
  }
  // drain both completely: the full remaining order must match
  for (let i = 0; i < 10_000 && ref.size > 0; i++) {
    assert.deepEqual(ids(q.take(1400, 2, 1, 64, undefined, true)), ids(ref.take(1400, 2, 1, 64, undefined, true)), `seed ${seed} drain`);
  }
  assert.equal(q.size, 0);
}

describe('broadcast queue = reference model over random op sequences', () => {
  test('300 seeds × 400 ops', () => {
    for (let seed = 1; seed <= 300; seed++) runSequence(seed, 400);
  });
  test('long run past block splits and merges (cap 1,024, 6,000 ops)', () => {
    const q = new BroadcastQueue(1024);
    const ref = new RefQueue(1024);
    const r = rng(42);
    for (let i = 0; i < 6_000; i++) {
      const item: BroadcastItem = { key: `t:${Math.floor(r() * 1500)}`, bytes: msg(60 + Math.floor(r() * 120)), local: r() < 0.1 };
      q.queue(item);
      ref.queue(item);
      if (i % 7 === 0) assert.deepEqual(ids(q.take(1360, 2, 4, 64)), ids(ref.take(1360, 2, 4, 64)), `op ${i}`);
    }
    assert.equal(q.size, ref.size);
    assert.equal(q.evicted, ref.evicted);
  });
});

test('micro-measure at 4,096 queued (printed, not asserted)', (t) => {
  const q = new BroadcastQueue(4096);
  const r = rng(7);
  let n = 0;
  const put = (): void => q.queue({ key: `t:${n++}`, bytes: msg(80 + Math.floor(r() * 80)), local: false });
  while (q.size < 4096) put();
  const measure = (label: string, f: () => void, iters: number): void => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) f();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    t.diagnostic(`${label}: ${Math.round(iters / s).toLocaleString('en')} ops/s (${((s / iters) * 1e6).toFixed(1)} µs each) at ${q.size} queued`);
  };
  measure('queue() when full (evicts one)', put, 20_000);
  // take a full packet (1,400 bytes, ~10 records), with a high limit so the queue stays full
  measure('take() one packet', () => { q.take(1360, 2, 1_000_000, 64); }, 5_000);
  assert.equal(q.size, 4096);
  // the previous implementation, same load, for scale (few iterations: it sorts 4,096 items per call)
  const ref = new RefQueue(4096);
  let m = 0;
  const refPut = (): void => ref.queue({ key: `t:${m++}`, bytes: msg(80 + Math.floor(r() * 80)), local: false });
  while (ref.size < 4096) refPut();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 50; i++) (refPut(), ref.take(1360, 2, 1_000_000, 64));
  const us = Number(process.hrtime.bigint() - t0) / 1e3 / 50;
  t.diagnostic(`reference (previous) queue(): + take(): ${us.toFixed(0)} µs per pair at ${ref.size} queued`);
});
