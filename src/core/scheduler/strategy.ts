/**
 * Strategies pick a node among the eligible leaves of one decision-tree branch
 * (classic Swarm's three):
 * - `spread` (default, swarmkit's): fewest tasks of this service, then fewest tasks in
 *   total; nodes with recent failures of the service go last.
 * - `binpack`: the most loaded node that still fits (reserved CPU/memory fraction, then
 *   task count), packing nodes full before using the next.
 * - `random`: uniform among eligible nodes, from an injected seeded rng.
 * Each picker updates incrementally (heap or swap-remove), O(log n) per placement.
 */
import type { Rng } from '../clock.js';
import { MeshError } from '../errors.js';
import { IndexedHeap } from './heap.js';
import type { NodeInfo } from './nodeinfo.js';

export type StrategyName = 'spread' | 'binpack' | 'random';

/** A node as seen while placing one group of tasks of one service. */
export interface Leaf {
  ni: NodeInfo;
  /** Tasks of the group's service on this node (kept in step with ni.byService). */
  svc: number;
  /** Recent failures of this service here (swarmkit's "potentially faulty"). */
  faulty: boolean;
  /** Position in its picker's heap (-1 = none). */
  heapIndex: number;
}

export interface LeafPicker {
  readonly size: number;
  /** The node the next task goes to (undefined when none is left). */
  choose(): Leaf | undefined;
  /** After a task was placed on `leaf`: re-key it, or drop it when it no longer fits. */
  placed(leaf: Leaf, stillFits: boolean): void;
}

/** Fraction 0..1 of the node's reservable resources in use (max of CPU and memory). */
export function loadOf(ni: NodeInfo): number {
  const r = ni.node.resources;
  const cpu = r.cpuMilli > 0 ? ni.cpuReserved / r.cpuMilli : 0;
  const mem = r.memoryBytes > 0 ? ni.memReserved / r.memoryBytes : 0;
  return Math.max(cpu, mem);
}

export function spreadLess(a: Leaf, b: Leaf): boolean {
  if (a.faulty !== b.faulty) return !a.faulty;
  if (a.svc !== b.svc) return a.svc < b.svc;
  if (a.ni.total !== b.ni.total) return a.ni.total < b.ni.total;
  return a.ni.node.id < b.ni.node.id;
}

export function binpackLess(a: Leaf, b: Leaf): boolean {
  if (a.faulty !== b.faulty) return !a.faulty;
  const la = loadOf(a.ni);
  const lb = loadOf(b.ni);
  if (la !== lb) return la > lb;
  if (a.ni.total !== b.ni.total) return a.ni.total > b.ni.total;
  return a.ni.node.id < b.ni.node.id;
}

class HeapPicker implements LeafPicker {
  private readonly heap: IndexedHeap<Leaf>;
  constructor(less: (a: Leaf, b: Leaf) => boolean, leaves: Leaf[]) {
    this.heap = new IndexedHeap(less, leaves, true);
  }
  get size(): number {
    return this.heap.size;
  }
  choose(): Leaf | undefined {
    return this.heap.peek();
  }
  placed(leaf: Leaf, stillFits: boolean): void {
    if (stillFits) this.heap.update(leaf);
    else this.heap.remove(leaf);
  }
}

class RandomPicker implements LeafPicker {
  private readonly leaves: Leaf[];
  private readonly index = new Map<Leaf, number>();
  constructor(private readonly rng: Rng, leaves: Leaf[]) {
    // Healthy nodes first; faulty ones only once no healthy node is left.
    this.leaves = [...leaves].sort((a, b) => Number(b.faulty) - Number(a.faulty));
    this.leaves.forEach((l, i) => this.index.set(l, i));
  }
  get size(): number {
    return this.leaves.length;
  }
  choose(): Leaf | undefined {
    const n = this.leaves.length;
    if (n === 0) return undefined;
    // Faulty leaves sit at the front; skip them while healthy ones remain.
    let faulty = 0;
    while (faulty < n && this.leaves[faulty]!.faulty) faulty++;
    const lo = faulty < n ? faulty : 0;
    return this.leaves[lo + Math.floor(this.rng() * (n - lo))];
  }
  placed(leaf: Leaf, stillFits: boolean): void {
    if (stillFits) return;
    const i = this.index.get(leaf);
    if (i === undefined) return;
    // Splice keeps the faulty-first order; O(n), but only when a node fills up.
    this.leaves.splice(i, 1);
    this.index.delete(leaf);
    for (let j = i; j < this.leaves.length; j++) this.index.set(this.leaves[j]!, j);
  }
}

export function makePicker(strategy: StrategyName, leaves: Leaf[], rng?: Rng): LeafPicker {
  switch (strategy) {
    case 'spread': return new HeapPicker(spreadLess, leaves);
    case 'binpack': return new HeapPicker(binpackLess, leaves);
    case 'random': {
      if (!rng) throw new MeshError('MESHD_BAD_ARGUMENT', 'the random strategy needs an injected rng');
      return new RandomPicker(rng, leaves);
    }
  }
}
