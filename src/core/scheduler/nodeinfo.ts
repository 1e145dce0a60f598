/**
 * Per-node bookkeeping the scheduler keeps while it places (swarmkit's NodeInfo): task
 * counts in total and per service, reserved resources, host-mode ports in use and
 * recent failures per service. Built once per `schedule()` call from the existing
 * tasks — O(tasks) — then updated incrementally for every placement.
 */
import type { Node, Task, TaskSpec } from '../spec/types.js';
import { isTerminal } from '../spec/types.js';
import { missingImageOf } from './image.js';

/** swarmkit's values: a node with this many failures of a service ... */
export const MAX_RECENT_FAILURES = 5;
/** ... within this window is tried last for that service. */
export const FAILURE_WINDOW_MS = 5 * 60_000;

export interface NodeInfo {
  node: Node;
  /** Tasks on the node that are meant to run (desired state not shutdown, not terminal). */
  total: number;
  byService: Map<string, number>;
  cpuReserved: number;
  memReserved: number;
  /** `PORT/proto` of host-mode published ports held by non-terminal tasks. */
  hostPorts: Set<string>;
  /** serviceId → times of recent task failures on this node. */
  failures: Map<string, number[]>;
  /** Images the node recently reported it does not have (see image.ts). */
  missingImages: Set<string>;
}

export function hostPortKeys(spec: TaskSpec): string[] {
  const out: string[] = [];
  for (const p of spec.ports) if (p.mode === 'host' && p.published > 0) out.push(`${p.published}/${p.proto}`);
  return out;
}

export function newNodeInfo(node: Node): NodeInfo {
  return { node, total: 0, byService: new Map(), cpuReserved: 0, memReserved: 0, hostPorts: new Set(), failures: new Map(), missingImages: new Set() };
}

/** Accounts a task placed on (or found on) this node. */
export function addTask(ni: NodeInfo, t: Pick<Task, 'serviceId' | 'spec' | 'desiredState' | 'state'>): void {
  if (isTerminal(t.state)) return;
  // A task being shut down still holds its reservation and ports until it stops.
  ni.cpuReserved += t.spec.resources.cpuMilli;
  ni.memReserved += t.spec.resources.memoryBytes;
  for (const k of hostPortKeys(t.spec)) ni.hostPorts.add(k);
  if (t.desiredState === 'shutdown') return;
  ni.total++;
  ni.byService.set(t.serviceId, (ni.byService.get(t.serviceId) ?? 0) + 1);
}

/**
 * Builds NodeInfos for all nodes. `now` (optional) enables the recent-failure penalty
 * (failed tasks updated within FAILURE_WINDOW_MS before `now` are counted) and the memory of
 * images a node reported missing (image.ts).
 */
export function buildNodeInfos(nodes: readonly Node[], tasks: Iterable<Task>, now?: number): Map<string, NodeInfo> {
  const m = new Map<string, NodeInfo>();
  for (const n of nodes) m.set(n.id, newNodeInfo(n));
  for (const t of tasks) {
    if (t.nodeId === undefined) continue;
    const ni = m.get(t.nodeId);
    if (!ni) continue;
    addTask(ni, t);
    if (now === undefined) continue;
    const missing = missingImageOf(t, ni.node, now);
    if (missing !== undefined) ni.missingImages.add(missing);
    if ((t.state === 'failed' || t.state === 'rejected') && now - t.timestamps.updated <= FAILURE_WINDOW_MS) {
      const l = ni.failures.get(t.serviceId);
      if (l) l.push(t.timestamps.updated);
      else ni.failures.set(t.serviceId, [t.timestamps.updated]);
    }
  }
  return m;
}

export function isPotentiallyFaulty(ni: NodeInfo, serviceId: string): boolean {
  return (ni.failures.get(serviceId)?.length ?? 0) >= MAX_RECENT_FAILURES;
}
