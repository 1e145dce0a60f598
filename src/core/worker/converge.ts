/**
 * The worker's converge plan, pure (src/agent/worker/worker.ts is its shell): given the node's
 * desired assignments and the tasks it holds, which tasks to drain and stop, which to start,
 * which to forget; what a runtime's exit report means for a task; whether a task found at start
 * is adopted or stopped; which networks the node may leave. No I/O and no time: the shell runs
 * one phase, feeds the outcome back (task states change as stops and starts finish) and asks for
 * the next phase, so a stop that fails is seen by the start phase exactly as before the move.
 *
 * Order of one converge (why): reap exited tasks first (their records go before anything is
 * started in their place); then remove what is no longer assigned; then remove unhealthy tasks
 * (drained like a scale-down, then reported failed); then start what is missing; then forget
 * ended tasks no longer assigned at all.
 *
 * A task that already ended (`ended`: a stop of it succeeded, or it never had a process — a
 * failed health check drained and stopped it, its exit was cleaned up, a failed start was
 * cleaned up) is not removed again when the manager takes it away: stopping it again would do
 * nothing, and marking it `stopped` would erase how it ended (`failed`, its error) from the
 * node's view before anyone read it. It is forgotten as a stopped task is.
 */
import { INGRESS_NETWORK } from '../endpoints.js';
import type { HealthStatus } from '../health/policy.js';

export type TaskState = 'new' | 'starting' | 'running' | 'draining' | 'stopped' | 'failed';

/** Task namespaces, veths and containers are named after the first 12 characters of the task id. */
export const SHORT_ID_LEN = 12;

export const shortId = (id: string): string => id.slice(0, SHORT_ID_LEN);

/** What the plan reads of a held task. */
export interface HeldTask {
  id: string;
  state: TaskState;
  /** null/undefined: no health check. */
  health?: HealthStatus | null;
  /** Ever published as a backend (then it is drained before it stops). */
  served?: boolean;
  networks: readonly string[];
  /**
   * Nothing of it runs any more: a stop of it succeeded (after a failed health check, an exit or
   * a failed start), so its state and error are final. Unset while a stop is still to do or
   * failed (`stop: …`): the removal retries it.
   */
  ended?: boolean;
}

/** What the plan reads of an assignment. */
export interface DesiredTask {
  id: string;
  desiredState: 'running' | 'shutdown';
}

/** Held tasks that are no longer desired running and have not ended yet: drained (if served) and stopped. */
export function toRemove(desired: ReadonlyMap<string, Pick<DesiredTask, 'desiredState'>>, held: Iterable<HeldTask>): string[] {
  const out: string[] = [];
  for (const h of held) if (desired.get(h.id)?.desiredState !== 'running' && !hasEnded(h)) out.push(h.id);
  return out;
}

/** Running tasks whose check says unhealthy: removed like a scale-down, and only then failed. */
export function toCure(held: Iterable<HeldTask>): string[] {
  const out: string[] = [];
  for (const h of held) if (h.state === 'running' && h.health === 'unhealthy') out.push(h.id);
  return out;
}

/**
 * Desired-running tasks to start now, in assignment order. Not: a task running or starting; a
 * failed task when the list is `managed` (the manager owns restarts: it shuts the task down and
 * places a replacement); a task whose exit was reported during this converge (the next converge,
 * already asked for, cleans it up first); a `oneShot` task (standalone container) that ran once
 * and ended, whatever its exit code — it is never restarted.
 */
export function toStart(desired: Iterable<DesiredTask>, held: ReadonlyMap<string, HeldTask>, managed: boolean, exited: ReadonlySet<string>, oneShot: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const a of desired) {
    if (a.desiredState !== 'running') continue;
    const h = held.get(a.id);
    if (h && (h.state === 'running' || h.state === 'starting')) continue;
    if (h?.state === 'failed' && (managed || oneShot.has(a.id))) continue;
    if (exited.has(a.id)) continue;
    out.push(a.id);
  }
  return out;
}

/** Ended tasks (stopped, or failed and cleaned up) no longer assigned at all: dropped from the view. */
export function toForget(desired: ReadonlyMap<string, unknown>, held: Iterable<HeldTask>): string[] {
  const out: string[] = [];
  for (const h of held) if (hasEnded(h) && !desired.has(h.id)) out.push(h.id);
  return out;
}

/** Stopped, or ended another way with nothing left to stop (see HeldTask.ended). */
export function hasEnded(h: Pick<HeldTask, 'state' | 'ended'>): boolean {
  return h.state === 'stopped' || h.ended === true;
}

/**
 * Of the tasks being removed, those to drain first: running and served (a task never published
 * as a backend has nothing to drain).
 */
export function toDrain(list: Iterable<HeldTask>): string[] {
  const out: string[] = [];
  for (const h of list) if (h.state === 'running' && h.served === true) out.push(h.id);
  return out;
}

/** How a running task is published: a backend unless its check has not passed yet. */
export function publishedState(health: HealthStatus | null | undefined): 'running' | 'starting' {
  return health === null || health === undefined || health === 'healthy' ? 'running' : 'starting';
}

/**
 * A runtime reported the task's process exited: while starting, remembered (the start then
 * fails); while running, the task fails at once (its cleanup is the next converge's); else nothing.
 */
export function exitVerdict(state: TaskState | undefined): 'during-start' | 'fail' | 'ignore' {
  if (state === 'starting') return 'during-start';
  if (state === 'running') return 'fail';
  return 'ignore';
}

/**
 * A task whose process died (runtime exit report or poll): is it drained before its sandbox goes?
 * Yes when it was a backend (running and served): its records turn `draining` at once and the
 * runtime stops it (which removes the sandbox and so its address) only after every member acked
 * that its LB and DNS dropped it. Until then a connection sent to it is refused at once by the
 * sandbox's kernel (RST: nothing listens any more); were the address gone first, the SYN would be
 * lost and the client's retransmits would follow the same conntrack entry to the dead address
 * until its own timeout (containers-lab, 2026-12-07: 2 s curl timeouts after `docker kill`). A
 * task that never served has no LB entry anywhere: stopped at once. Call it BEFORE the task is
 * marked failed (it reads the state the death found).
 */
export function drainsOnExit(h: Pick<HeldTask, 'state' | 'served'>): boolean {
  return h.state === 'running' && h.served === true;
}

export function exitError(code: number | null | undefined): string {
  return code === null || code === undefined ? 'task process exited' : `task process exited with code ${code}`;
}

/**
 * Running tasks that the poll (runtimes without exit events, adopted netns tasks) no longer
 * finds alive. `alive`: short ids of the running tasks the runtimes list.
 */
export function exitedByPoll(polled: Iterable<HeldTask>, alive: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const h of polled) if (h.state === 'running' && !alive.has(shortId(h.id))) out.push(h.id);
  return out;
}

/**
 * A task a runtime still holds at agent start: adopted when it is still assigned to run, is
 * running, has networks and runs on the runtime its assignment names; stopped otherwise.
 */
export function adoptVerdict(a: { desiredState: 'running' | 'shutdown'; attachments: number; runtime: 'netns' | 'docker' } | undefined, running: boolean, runtimeKind: 'netns' | 'docker'): 'adopt' | 'stop' {
  return a && a.desiredState === 'running' && running && a.attachments > 0 && a.runtime === runtimeKind ? 'adopt' : 'stop';
}

/**
 * Whether the node leaves gossip network `net` once task `goneId` is detached: when no other
 * task that is running, starting or draining uses it — and never `ingress`, which holds the
 * node's routing-mesh sandbox for the node's whole life (leaving it with the last local task
 * made published ports stop reaching remote tasks; found by the chaos soak).
 */
export function leavesNetwork(net: string, goneId: string, held: Iterable<HeldTask>): boolean {
  if (net === INGRESS_NETWORK) return false;
  for (const h of held) {
    if (h.id === goneId) continue;
    if ((h.state === 'running' || h.state === 'starting' || h.state === 'draining') && h.networks.includes(net)) return false;
  }
  return true;
}
