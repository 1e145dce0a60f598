/**
 * The filter pipeline, in swarmkit's order: node ready and active → the task's runtime
 * (swarmkit's platform filter) → its image not reported missing there → constraints →
 * resources → host-mode port conflicts → max replicas per node. A node is eligible for a task when every
 * filter passes; the first one to fail is the node's reason, and the reasons are
 * summed up in an "unschedulable" message like swarmkit's
 * `no suitable node (2 nodes not available for new tasks; 1 node not satisfying constraints)`.
 */
import type { Node, RuntimeKind, TaskSpec } from '../spec/types.js';
import { nodeRuntimes, resolveRuntime } from '../spec/runtime.js';
import { compileConstraints } from './constraint.js';
import type { NodeInfo } from './nodeinfo.js';
import { hostPortKeys } from './nodeinfo.js';

export type FilterName = 'availability' | 'runtime' | 'image' | 'constraints' | 'resources' | 'hostPorts' | 'maxReplicas';
export const FILTER_ORDER: readonly FilterName[] = ['availability', 'runtime', 'image', 'constraints', 'resources', 'hostPorts', 'maxReplicas'];

/** One task spec's filters, compiled once and applied to many nodes. */
export interface CompiledFilters {
  /** The runtime the spec's tasks need (resolved: a spec may leave it automatic). */
  runtime: RuntimeKind;
  image: string;
  /** Filters that do not change while placing (availability, runtime, image, constraints). */
  staticFail(ni: NodeInfo): FilterName | null;
  /** Filters that change as tasks are placed (resources, host ports, tasks of the service per node). */
  dynamicFail(ni: NodeInfo): FilterName | null;
  firstFail(ni: NodeInfo): FilterName | null;
  /** Does the spec publish host-mode ports (so one task of it per node at most)? */
  hasHostPorts: boolean;
}

/**
 * `serviceId` is what `maxReplicasPerNode` counts (NodeInfo.byService: tasks of the service
 * meant to run there, as swarmkit's MaxReplicasFilter counts them).
 */
export function compileFilters(spec: TaskSpec, serviceId = ''): CompiledFilters {
  const maxPerNode = spec.maxReplicasPerNode ?? 0;
  const constraints = compileConstraints(spec.constraints);
  const ports = hostPortKeys(spec);
  const cpu = spec.resources.cpuMilli;
  const mem = spec.resources.memoryBytes;
  const runtime = resolveRuntime(spec);
  const staticFail = (ni: NodeInfo): FilterName | null => {
    if (ni.node.state !== 'ready' || ni.node.availability !== 'active') return 'availability';
    if (!nodeRuntimes(ni.node).includes(runtime)) return 'runtime';
    if (ni.missingImages.has(spec.image)) return 'image';
    if (!constraints(ni.node)) return 'constraints';
    return null;
  };
  const dynamicFail = (ni: NodeInfo): FilterName | null => {
    if (cpu > 0 && ni.node.resources.cpuMilli - ni.cpuReserved < cpu) return 'resources';
    if (mem > 0 && ni.node.resources.memoryBytes - ni.memReserved < mem) return 'resources';
    for (const p of ports) if (ni.hostPorts.has(p)) return 'hostPorts';
    if (maxPerNode > 0 && (ni.byService.get(serviceId) ?? 0) >= maxPerNode) return 'maxReplicas';
    return null;
  };
  return {
    runtime,
    image: spec.image,
    staticFail,
    dynamicFail,
    firstFail: (ni) => staticFail(ni) ?? dynamicFail(ni),
    hasHostPorts: ports.length > 0,
  };
}

/** What the runtime and image phrases name; without it they only count nodes. */
export interface ExplainContext {
  runtime: RuntimeKind;
  image: string;
  /** Nodes (of all) that have the runtime, whatever else they fail. */
  runtimeNodes: number;
}

const nodes = (n: number): string => `${n} ${n === 1 ? 'node' : 'nodes'}`;

const PHRASE: Record<FilterName, (n: number, total: number, c?: ExplainContext) => string> = {
  availability: (n) => `${n} ${n === 1 ? 'node' : 'nodes'} not available for new tasks`,
  // `runtime docker on 0/3 nodes`: how many nodes have it at all, which says what to fix.
  runtime: (n, total, c) => (c ? `runtime ${c.runtime} on ${c.runtimeNodes}/${total} nodes` : `${nodes(n)} without the task's runtime`),
  image: (n, _total, c) => (c ? `image ${c.image} not present on ${nodes(n)}` : `image not present on ${nodes(n)}`),
  constraints: (n) => `${n} ${n === 1 ? 'node' : 'nodes'} not satisfying constraints`,
  resources: (n) => `insufficient resources on ${n} ${n === 1 ? 'node' : 'nodes'}`,
  hostPorts: (n) => `host-mode port already in use on ${n} ${n === 1 ? 'node' : 'nodes'}`,
  // swarmkit's words exactly (no count): `no suitable node (max replicas per node limit exceed)`.
  maxReplicas: () => 'max replicas per node limit exceed',
};

/** How many of `nodes` have the runtime (for the runtime phrase). */
export function countRuntime(runtime: RuntimeKind, all: Iterable<Node>): number {
  let n = 0;
  for (const node of all) if (nodeRuntimes(node).includes(runtime)) n++;
  return n;
}

/** Human explanation of why no node fits, from per-filter failure counts. */
export function explainFailures(counts: ReadonlyMap<FilterName, number>, nodeCount: number, ctx?: ExplainContext): string {
  if (nodeCount === 0) return 'no suitable node (no nodes)';
  const parts = FILTER_ORDER.filter((f) => (counts.get(f) ?? 0) > 0).map((f) => PHRASE[f](counts.get(f)!, nodeCount, ctx));
  return parts.length ? `no suitable node (${parts.join('; ')})` : 'no suitable node';
}

/** Counts, for every node, the first filter that fails (O(nodes)). */
export function countFailures(filters: CompiledFilters, infos: Iterable<NodeInfo>): Map<FilterName, number> {
  const counts = new Map<FilterName, number>();
  for (const ni of infos) {
    const f = filters.firstFail(ni);
    if (f) counts.set(f, (counts.get(f) ?? 0) + 1);
  }
  return counts;
}
