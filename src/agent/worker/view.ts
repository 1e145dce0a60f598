/**
 * The view of one task that `GET /v1/tasks` answers and the manager link reports, built from
 * what the worker holds (if anything), its assignment and its last drain.
 */
import type { TaskInfo } from '../../adapters/runtime/types.js';
import type { Assignment } from '../../core/assignments.js';
import type { HealthStatus } from '../../core/health/policy.js';
import { shortId, type TaskState } from '../../core/worker/converge.js';
import type { DrainResult } from '../drain/wait.js';
import type { StartTiming, TaskView } from './types.js';

export interface HeldState {
  a: Assignment;
  state: TaskState;
  info: TaskInfo | null;
  error: string | null;
  adopted: boolean;
  health?: HealthStatus | null;
  timing?: StartTiming;
}

/** `a`: the held task's assignment, else the desired one; `desired`: the current assignment (undefined: no longer assigned). */
export function taskViewOf(id: string, a: Assignment, h: HeldState | undefined, desired: Assignment | undefined, drain: DrainResult | undefined, prefix: string): TaskView {
  const rt = a.task.runtime ?? 'netns';
  return {
    id, name: a.task.name, service: a.task.serviceName, runtime: rt,
    state: h?.state ?? 'new',
    desiredState: desired?.desiredState ?? 'shutdown',
    ips: Object.fromEntries(a.attachments.map((x) => [x.network.name, x.ip])),
    ips6: Object.fromEntries(a.attachments.filter((x) => x.ip6 !== undefined).map((x) => [x.network.name, x.ip6!])),
    networks: a.attachments.map((x) => x.network.name),
    netns: h?.info?.netns ?? null,
    container: rt === 'docker' && h?.info ? `${prefix}c-${shortId(id)}` : null,
    pid: h?.info?.pid ?? null,
    error: h?.error ?? null,
    adopted: h?.adopted ?? false,
    drain: drain ? { outcome: drain.outcome, ms: drain.ms } : null,
    health: h?.health ?? null,
    start: h?.timing ?? null,
  };
}
