/**
 * Taking tasks away (swarm's task shutdown): the ones that were backends are published `draining`
 * and the removal waits until every member confirmed its LB and DNS dropped them (drain acks; a
 * fixed period without a waiter), then each is stopped with its grace and signal, and its records
 * and local endpoints go. A stop that fails leaves the task `failed` with the reason, attached, for
 * the next converge to retry — never dropped silently. A stop that succeeds marks the task `ended`:
 * the plan (toRemove) never hands it in again, and its end state and error stay as they are (a task that failed its
 * health check stays `failed` with why after the manager shuts it down; core/worker/converge.ts).
 *
 * A task that had already failed (its start failed, its process exited, its check failed) keeps
 * that FIRST error through every stop attempt: the cleanup stop of a failed task that failed too
 * left it `failed`, not ended, and the removal that retries it used to overwrite the error with
 * `stop: …` (or clear it when the retry succeeded and the task was marked `stopped`), so neither
 * the node's view nor the manager's record said why the task had failed. While its stop keeps
 * failing the error reads `<first>; cleanup stop failed: <stop error>` (its process may still hold
 * the address or ports: worth seeing in `service ps`, not only in the log); once a stop succeeds it
 * is the first error alone again. A task that had not failed and whose stop fails reads
 * `stop: <stop error>` as before (the stop failure is then the only thing wrong with it).
 */
import type { Logger } from '../../adapters/logger.js';
import type { Runtime } from '../../adapters/runtime/types.js';
import type { TimerClock } from '../../core/clock.js';
import type { Assignment } from '../../core/assignments.js';
import type { EndpointRecord } from '../../core/endpoints.js';
import { toMeshError } from '../../core/errors.js';
import { toDrain } from '../../core/worker/converge.js';
import type { DrainResult, DrainWait } from '../drain/wait.js';
import type { Held } from './types.js';

/** Fixed drain period when no waiter confirms drains (ms). */
export const DEFAULT_DRAIN_MS = 2000;

/** What the removal needs of the worker. */
export interface RemovalHost {
  clock: TimerClock;
  log: Logger;
  drain: DrainWait | undefined;
  drainMs: number | undefined;
  stopGraceMs: number | undefined;
  runtimeOf(a: Assignment): Runtime;
  heldOf(ids: readonly string[]): Held[];
  publish(h: Held, state: EndpointRecord['state']): void;
  /** Records and local endpoints of the task go (health checks end, networks left when unused). */
  detach(a: Assignment): void;
  endHealth(taskId: string): void;
}

/** The error of a task whose stop failed: `stop: …`, or its first error with the stop failure appended. */
export function stopFailedError(first: string | null, stopError: string): string {
  return first === null ? `stop: ${stopError}` : `${first}; cleanup stop failed: ${stopError}`;
}

export class TaskRemoval {
  /** Outcome of each task's last drain (task id → result), for the task views. */
  readonly lastDrains = new Map<string, DrainResult>();
  /**
   * Tasks whose stop here failed → why they had failed before (null: they had not). Keyed by the
   * held object, not the id: a task started again in place (unmanaged) is a new object and starts
   * clean, and an entry goes with its task when the worker forgets it.
   */
  private readonly firstErrors = new WeakMap<Held, string | null>();

  constructor(private readonly w: RemovalHost) {}

  /** Drains (tasks that were backends), stops; `failed` names tasks that end failed, with their error. */
  async remove(list: Held[], failed?: ReadonlyMap<string, string>): Promise<void> {
    // Read before any state changes below: why each task ends failed, or null (it ends stopped).
    const why = new Map(list.map((h) => [h, this.firstError(h, failed)]));
    for (const h of list) this.w.endHealth(h.id);
    const live = this.w.heldOf(toDrain(list));
    for (const h of list) if (h.state === 'running') h.state = 'draining';
    for (const h of live) this.w.publish(h, 'draining');
    if (live.length) await this.drain(live);
    for (const h of list) {
      try {
        await this.w.runtimeOf(h.a).stop(h.id, h.a.task.stopGraceMs ?? this.w.stopGraceMs ?? 5000, h.a.task.stopSignal);
        const first = why.get(h) ?? null;
        h.state = first === null ? 'stopped' : 'failed';
        h.error = first;
        h.ended = true;
        this.firstErrors.delete(h);
      } catch (e) {
        const first = why.get(h) ?? null;
        this.firstErrors.set(h, first);
        h.state = 'failed';
        h.error = stopFailedError(first, toMeshError(e).message);
        this.w.log.error({ err: e, task: h.id, ...(first !== null ? { firstError: first } : {}) }, 'task stop failed (retried later)');
        continue;
      }
      this.w.detach(h.a);
    }
  }

  /**
   * Why a task being removed ends failed, or null when it ends `stopped`: the reason handed in
   * (`failed`: a failed health check); else, when a stop of it failed here before, what it had
   * failed with then (null for a plain shutdown whose stop failed: its `stop: …` error is no first
   * error); else the error of a task that is already `failed` (a failed start or an exit whose
   * cleanup stop failed in the worker, which leaves the error as it was).
   */
  private firstError(h: Held, failed: ReadonlyMap<string, string> | undefined): string | null {
    const given = failed?.get(h.id);
    if (given !== undefined) return given;
    if (this.firstErrors.has(h)) return this.firstErrors.get(h) ?? null;
    return h.state === 'failed' ? h.error : null;
  }

  /**
   * A task whose process died while it was a backend, just published `draining`, still holding
   * its sandbox: starts the wait at once (same turn as the publish) and resolves once every member
   * confirmed its LB and DNS dropped it (or the waiter's timeout / the fixed period), so the
   * caller removes its sandbox only then.
   */
  withdrawDead(h: Held): Promise<void> {
    return this.drain([h]);
  }

  /** Waits until the draining tasks are confirmed out of every node's LB and DNS (or the fixed period). */
  private async drain(live: Held[]): Promise<void> {
    const d = this.w.drain;
    if (!d) {
      await new Promise<void>((r) => this.w.clock.setTimer(this.w.drainMs ?? DEFAULT_DRAIN_MS, r));
      return;
    }
    const results: DrainResult[] = await Promise.all(live.map((h) => d.wait(h.id, h.networks)));
    for (const r of results) this.lastDrains.set(r.taskId, r);
  }
}
