/**
 * Binary min-heap with position tracking, so an item whose key changed can be moved
 * in O(log n) (`update`) and any item removed in O(log n). The scheduler keeps one per
 * decision-tree level instead of re-sorting nodes for every task (swarmkit re-sorts
 * per batch; incremental keys are what makes 100k tasks cheap).
 *
 * Positions live in a Map by default; items that sit in exactly one heap at a time can
 * carry their own `heapIndex` (pass `intrusive: true`), which is ~2x faster.
 */
export interface HeapIndexed {
  heapIndex: number;
}

class IntrusivePos<T extends HeapIndexed> {
  get(x: T): number | undefined {
    return x.heapIndex >= 0 ? x.heapIndex : undefined;
  }
  set(x: T, i: number): void {
    x.heapIndex = i;
  }
  has(x: T): boolean {
    return x.heapIndex >= 0;
  }
  delete(x: T): void {
    x.heapIndex = -1;
  }
}

interface PosMap<T> {
  get(x: T): number | undefined;
  set(x: T, i: number): unknown;
  has(x: T): boolean;
  delete(x: T): unknown;
}

export class IndexedHeap<T> {
  private readonly items: T[] = [];
  private readonly pos: PosMap<T>;
  constructor(private readonly less: (a: T, b: T) => boolean, init: Iterable<T> = [], intrusive = false) {
    this.pos = intrusive ? (new IntrusivePos() as unknown as PosMap<T>) : new Map<T, number>();
    for (const x of init) {
      this.pos.set(x, this.items.length);
      this.items.push(x);
    }
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.down(i);
  }
  get size(): number {
    return this.items.length;
  }
  peek(): T | undefined {
    return this.items[0];
  }
  has(x: T): boolean {
    return this.pos.has(x);
  }
  push(x: T): void {
    if (this.pos.has(x)) throw new Error('IndexedHeap: item already present');
    this.pos.set(x, this.items.length);
    this.items.push(x);
    this.up(this.items.length - 1);
  }
  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }
  /** Re-positions `x` after its key changed (either direction). */
  update(x: T): void {
    const i = this.pos.get(x);
    if (i === undefined) return;
    if (!this.up(i)) this.down(i);
  }
  remove(x: T): boolean {
    const i = this.pos.get(x);
    if (i === undefined) return false;
    const last = this.items.pop()!;
    this.pos.delete(x);
    if (i < this.items.length) {
      this.items[i] = last;
      this.pos.set(last, i);
      if (!this.up(i)) this.down(i);
    }
    return true;
  }
  private swap(i: number, j: number): void {
    const a = this.items[i]!;
    const b = this.items[j]!;
    this.items[i] = b;
    this.items[j] = a;
    this.pos.set(b, i);
    this.pos.set(a, j);
  }
  private up(i: number): boolean {
    let moved = false;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(this.items[i]!, this.items[p]!)) break;
      this.swap(i, p);
      i = p;
      moved = true;
    }
    return moved;
  }
  private down(i: number): void {
    const n = this.items.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      let m = l;
      if (r < n && this.less(this.items[r]!, this.items[l]!)) m = r;
      if (!this.less(this.items[m]!, this.items[i]!)) return;
      this.swap(i, m);
      i = m;
    }
  }
}
