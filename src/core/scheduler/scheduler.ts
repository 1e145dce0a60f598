/**
 * schedule(): assigns pending tasks to nodes. Pure: same input (and rng) → same output.
 *
 * Tasks are grouped by (service, spec version) — one group shares constraints,
 * resources, ports and preferences. Per group:
 * 1. every node goes through the static filters once (O(nodes));
 * 2. eligible nodes form a decision tree, one level per placement preference (spread
 *    over a label's values; nodes missing the label form their own "" branch, as in
 *    swarmkit), leaves are nodes;
 * 3. each task walks down the tree taking at every level the branch with the fewest
 *    tasks of the service, and at the leaves asks the strategy's picker. Counts change
 *    incrementally (heaps), so a task costs O(depth · log nodes), not O(nodes).
 * A node that no longer fits (resources, host port) leaves its heap; a branch that
 * empties leaves its parent. When the root empties, the rest of the group is
 * unschedulable, with a reason counted over all nodes.
 *
 * Tasks that already carry a nodeId (global services) are only checked against that node.
 */
import type { Rng } from '../clock.js';
import type { Node, Task } from '../spec/types.js';
import type { CompiledFilters, FilterName } from './filters.js';
import { compileFilters, countFailures, countRuntime, explainFailures } from './filters.js';
import { IndexedHeap } from './heap.js';
import type { NodeInfo } from './nodeinfo.js';
import { addTask, buildNodeInfos, hostPortKeys, isPotentiallyFaulty } from './nodeinfo.js';
import type { Leaf, LeafPicker, StrategyName } from './strategy.js';
import { makePicker } from './strategy.js';

export interface ScheduleOptions {
  /** Default `spread`. */
  strategy?: StrategyName;
  /** Needed by `random`. */
  rng?: Rng;
  /** Enables swarmkit's recent-failure penalty (failed tasks within 5 min before now). */
  now?: number;
}

export interface Assignment {
  taskId: string;
  nodeId: string;
}
export interface Unschedulable {
  taskId: string;
  reason: string;
}
export interface ScheduleResult {
  assignments: Assignment[];
  unschedulable: Unschedulable[];
}

interface Branch {
  key: string;
  heapIndex: number;
  /** Tasks of the group's service on eligible nodes of this subtree. */
  svc: number;
  children?: IndexedHeap<Branch>;
  leaves?: LeafPicker;
}

function branchLess(a: Branch, b: Branch): boolean {
  if (a.svc !== b.svc) return a.svc < b.svc;
  return a.key < b.key;
}

function branchSize(b: Branch): number {
  return b.children ? b.children.size : b.leaves!.size;
}

/** Label value a preference descriptor (`node.labels.K`) reads from a node; "" when missing. */
export function preferenceValue(descriptor: string, node: Node): string {
  const key = descriptor.slice('node.labels.'.length);
  return Object.prototype.hasOwnProperty.call(node.labels, key) ? node.labels[key]! : '';
}

function buildTree(key: string, leaves: Leaf[], prefs: readonly string[], depth: number, strategy: StrategyName, rng?: Rng): Branch {
  const svc = leaves.reduce((s, l) => s + l.svc, 0);
  if (depth >= prefs.length) return { key, svc, heapIndex: -1, leaves: makePicker(strategy, leaves, rng) };
  const groups = new Map<string, Leaf[]>();
  for (const l of leaves) {
    const v = preferenceValue(prefs[depth]!, l.ni.node);
    const g = groups.get(v);
    if (g) g.push(l);
    else groups.set(v, [l]);
  }
  const kids = [...groups].map(([v, ls]) => buildTree(v, ls, prefs, depth + 1, strategy, rng));
  return { key, svc, heapIndex: -1, children: new IndexedHeap(branchLess, kids, true) };
}

/** Places one task in the subtree; returns the leaf used (undefined if the subtree is empty). */
function placeOne(b: Branch, group: Group): Leaf | undefined {
  if (b.leaves) {
    const leaf = b.leaves.choose();
    if (!leaf) return undefined;
    leaf.svc++;
    reserve(leaf.ni, group);
    b.leaves.placed(leaf, group.filters.dynamicFail(leaf.ni) === null);
    b.svc++;
    return leaf;
  }
  const heap = b.children!;
  for (;;) {
    const child = heap.peek();
    if (!child) return undefined;
    const leaf = placeOne(child, group);
    if (branchSize(child) === 0) heap.remove(child);
    else heap.update(child);
    if (leaf) {
      b.svc++;
      return leaf;
    }
  }
}

interface Group {
  serviceId: string;
  tasks: Task[];
  filters: CompiledFilters;
  /** A representative task (same service and spec). */
  proto: Task;
  /** Host-mode `PORT/proto` keys of the spec, computed once. */
  hostPorts: string[];
}

/** Accounts one placed task of the group on the node (what addTask does, minus re-deriving the spec). */
function reserve(ni: NodeInfo, g: Group): void {
  ni.cpuReserved += g.proto.spec.resources.cpuMilli;
  ni.memReserved += g.proto.spec.resources.memoryBytes;
  for (const k of g.hostPorts) ni.hostPorts.add(k);
  ni.total++;
  ni.byService.set(g.serviceId, (ni.byService.get(g.serviceId) ?? 0) + 1);
}

type FilterCache = Map<Task['spec'], CompiledFilters>;

function filtersFor(cache: FilterCache, spec: Task['spec'], serviceId: string): CompiledFilters {
  let f = cache.get(spec);
  if (!f) {
    f = compileFilters(spec, serviceId);
    cache.set(spec, f);
  }
  return f;
}

function groupTasks(pending: readonly Task[], filterCache: FilterCache): { groups: Group[]; pinned: Task[] } {
  const byKey = new Map<string, Group>();
  const pinned: Task[] = [];
  let last: Group | undefined;
  for (const t of pending) {
    if (t.nodeId !== undefined) {
      pinned.push(t);
      continue;
    }
    // Tasks of one service usually come in a run: skip the key string and map lookup.
    if (last && last.serviceId === t.serviceId && last.proto.specVersion === t.specVersion) {
      last.tasks.push(t);
      continue;
    }
    const k = `${t.serviceId}\u0000${t.specVersion}`;
    let g = byKey.get(k);
    if (!g) {
      const filters = filtersFor(filterCache, t.spec, t.serviceId);
      g = { serviceId: t.serviceId, tasks: [], filters, proto: t, hostPorts: hostPortKeys(t.spec) };
      byKey.set(k, g);
    }
    g.tasks.push(t);
    last = g;
  }
  return { groups: [...byKey.values()], pinned };
}

/**
 * Assigns `pending` tasks (not yet on a node, or pinned to one for global services) to
 * `nodes`, given the `existing` tasks already placed. Deterministic for spread/binpack;
 * `random` draws from `opts.rng`.
 */
export function schedule(pending: readonly Task[], nodes: readonly Node[], existing: Iterable<Task>, opts: ScheduleOptions = {}): ScheduleResult {
  const strategy = opts.strategy ?? 'spread';
  const infos = buildNodeInfos(nodes, existing, opts.now);
  const assignments: Assignment[] = [];
  const unschedulable: Unschedulable[] = [];
  const filterCache: FilterCache = new Map();
  const { groups, pinned } = groupTasks(pending, filterCache);

  for (const t of pinned) {
    const ni = infos.get(t.nodeId!);
    if (!ni) {
      unschedulable.push({ taskId: t.id, reason: `node ${t.nodeId} not found` });
      continue;
    }
    const filters = filtersFor(filterCache, t.spec, t.serviceId);
    const f = filters.firstFail(ni);
    if (f) {
      const ctx = { runtime: filters.runtime, image: filters.image, runtimeNodes: countRuntime(filters.runtime, [ni.node]) };
      unschedulable.push({ taskId: t.id, reason: explainFailures(new Map<FilterName, number>([[f, 1]]), 1, ctx) });
      continue;
    }
    addTask(ni, { ...t, desiredState: 'running', state: 'assigned' });
    assignments.push({ taskId: t.id, nodeId: ni.node.id });
  }

  for (const g of groups) {
    const leaves: Leaf[] = [];
    for (const ni of infos.values()) {
      if (g.filters.firstFail(ni) !== null) continue;
      leaves.push({ ni, svc: ni.byService.get(g.serviceId) ?? 0, faulty: isPotentiallyFaulty(ni, g.serviceId), heapIndex: -1 });
    }
    const root = buildTree('', leaves, g.proto.spec.preferences.map((p) => p.spread), 0, strategy, opts.rng);
    let i = 0;
    for (; i < g.tasks.length; i++) {
      if (branchSize(root) === 0) break;
      const leaf = placeOne(root, g);
      if (!leaf) break;
      assignments.push({ taskId: g.tasks[i]!.id, nodeId: leaf.ni.node.id });
    }
    if (i < g.tasks.length) {
      const ctx = { runtime: g.filters.runtime, image: g.filters.image, runtimeNodes: countRuntime(g.filters.runtime, nodes) };
      const reason = explainFailures(countFailures(g.filters, infos.values()), infos.size, ctx);
      for (; i < g.tasks.length; i++) unschedulable.push({ taskId: g.tasks[i]!.id, reason });
    }
  }
  return { assignments, unschedulable };
}
