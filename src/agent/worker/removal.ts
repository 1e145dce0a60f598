/**
 * Taking tasks away (swarm's task shutdown): the ones that were backends are published `draining`
 * and the removal waits until every member confirmed its LB and DNS dropped them (drain acks; a
 * fixed period without a waiter), then each is stopped with its grace and signal, and its records
 * and local endpoints go. A stop that fails leaves the task `failed` with the reason, attached, for
 * the next converge to retry — never dropped silently. A stop that succeeds marks the task `ended`:
 * the plan (toRemove) never hands it in again, and its end state and error stay as they are (a task that failed its
 * health check stays `failed` with why after the manager shuts it down; core/worker/converge.ts).
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

export class TaskRemoval {
  /** Outcome of each task's last drain (task id → result), for the task views. */
  readonly lastDrains = new Map<string, DrainResult>();

  constructor(private readonly w: RemovalHost) {}

  /** Drains (tasks that were backends), stops; `failed` names tasks that end failed, with their error. */
  async remove(list: Held[], failed?: ReadonlyMap<string, string>): Promise<void> {
    for (const h of list) this.w.endHealth(h.id);
    const live = this.w.heldOf(toDrain(list));
    for (const h of list) if (h.state === 'running') h.state = 'draining';
    for (const h of live) this.w.publish(h, 'draining');
    if (live.length) await this.drain(live);
    for (const h of list) {
      try {
        await this.w.runtimeOf(h.a).stop(h.id, h.a.task.stopGraceMs ?? this.w.stopGraceMs ?? 5000, h.a.task.stopSignal);
        const why = failed?.get(h.id);
        h.state = why === undefined ? 'stopped' : 'failed';
        h.error = why ?? null;
        h.ended = true;
      } catch (e) {
        h.state = 'failed';
        h.error = `stop: ${toMeshError(e).message}`;
        this.w.log.error({ err: e, task: h.id }, 'task stop failed (retried later)');
        continue;
      }
      this.w.detach(h.a);
    }
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
