/**
 * The filter pipeline, in swarmkit's order: node ready and active → constraints →
 * resources → host-mode port conflicts. A node is eligible for a task when every
 * filter passes; the first one to fail is the node's reason, and the reasons are
 * summed up in an "unschedulable" message like swarmkit's
 * `no suitable node (2 nodes not available for new tasks; 1 node not satisfying constraints)`.
 */
import type { TaskSpec } from '../spec/types.js';
import { compileConstraints } from './constraint.js';
import type { NodeInfo } from './nodeinfo.js';
import { hostPortKeys } from './nodeinfo.js';

export type FilterName = 'availability' | 'constraints' | 'resources' | 'hostPorts';
export const FILTER_ORDER: readonly FilterName[] = ['availability', 'constraints', 'resources', 'hostPorts'];

/** One task spec's filters, compiled once and applied to many nodes. */
export interface CompiledFilters {
  /** Filters that do not change while placing (availability, constraints). */
  staticFail(ni: NodeInfo): FilterName | null;
  /** Filters that change as tasks are placed (resources, host ports). */
  dynamicFail(ni: NodeInfo): FilterName | null;
  firstFail(ni: NodeInfo): FilterName | null;
  /** Does the spec publish host-mode ports (so one task of it per node at most)? */
  hasHostPorts: boolean;
}

export function compileFilters(spec: TaskSpec): CompiledFilters {
  const constraints = compileConstraints(spec.constraints);
  const ports = hostPortKeys(spec);
  const cpu = spec.resources.cpuMilli;
  const mem = spec.resources.memoryBytes;
  const staticFail = (ni: NodeInfo): FilterName | null => {
    if (ni.node.state !== 'ready' || ni.node.availability !== 'active') return 'availability';
    if (!constraints(ni.node)) return 'constraints';
    return null;
  };
  const dynamicFail = (ni: NodeInfo): FilterName | null => {
    if (cpu > 0 && ni.node.resources.cpuMilli - ni.cpuReserved < cpu) return 'resources';
    if (mem > 0 && ni.node.resources.memoryBytes - ni.memReserved < mem) return 'resources';
    for (const p of ports) if (ni.hostPorts.has(p)) return 'hostPorts';
    return null;
  };
  return {
    staticFail,
    dynamicFail,
    firstFail: (ni) => staticFail(ni) ?? dynamicFail(ni),
    hasHostPorts: ports.length > 0,
  };
}

const PHRASE: Record<FilterName, (n: number) => string> = {
  availability: (n) => `${n} ${n === 1 ? 'node' : 'nodes'} not available for new tasks`,
  constraints: (n) => `${n} ${n === 1 ? 'node' : 'nodes'} not satisfying constraints`,
  resources: (n) => `insufficient resources on ${n} ${n === 1 ? 'node' : 'nodes'}`,
  hostPorts: (n) => `host-mode port already in use on ${n} ${n === 1 ? 'node' : 'nodes'}`,
};

/** Human explanation of why no node fits, from per-filter failure counts. */
export function explainFailures(counts: ReadonlyMap<FilterName, number>, nodeCount: number): string {
  if (nodeCount === 0) return 'no suitable node (no nodes)';
  const parts = FILTER_ORDER.filter((f) => (counts.get(f) ?? 0) > 0).map((f) => PHRASE[f](counts.get(f)!));
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
