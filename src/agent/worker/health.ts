/**
 * The worker's health shell: knows the health of every started task that has a check, and
 * tells the worker when it changes (the worker then publishes the task as a backend, or
 * drains and fails it: src/agent/worker/worker.ts).
 *
 * Two sources, one answer:
 * - the docker runtime runs checks itself (the spec's `healthcheck` handed to the Engine as
 *   Config.Healthcheck, or the image's own HEALTHCHECK with no meshd code at all); the shell
 *   takes the Engine's verdicts from the events stream (`health_status: …`, Runtime.onHealth)
 *   and the first one from the start's inspect (TaskInfo.health). An event that arrives while
 *   the task is still starting (before begin) is kept and wins over the inspect;
 * - the netns runtime has no checker: the shell runs the check as a command in the task's
 *   namespace (Runtime.exec) on the schedule of the pure policy (core/health/policy.ts), with
 *   one timer per task armed at the policy's nextDeadline().
 *
 * A task without a check is not tracked (begin returns null): it is a backend as soon as it
 * runs, as before health checks existed.
 */
import type { Logger } from '../../adapters/logger.js';
import type { Runtime, TaskInfo } from '../../adapters/runtime/types.js';
import type { Timer, TimerClock } from '../../core/clock.js';
import { HealthPolicy, type HealthStatus } from '../../core/health/policy.js';
import { probeOf, type HealthcheckSpec, type HealthProbe } from '../../core/health/spec.js';

export interface HealthShellOptions {
  /** Time and the probe timers (a ManualClock in tests). */
  clock: TimerClock;
  log: Logger;
  /** A tracked task's status changed (not called for the status begin() returns). */
  onChange: (taskId: string, status: HealthStatus) => void;
}

interface Tracked {
  status: HealthStatus;
  /** Why it is unhealthy (last probe output), for the task's error. */
  reason: string;
  probe?: { rt: Runtime; spec: HealthProbe; policy: HealthPolicy; timer: Timer | null; running: boolean };
}

/** Verdicts kept for tasks not tracked yet (at most this many; a start takes seconds, not thousands of events). */
const EARLY_MAX = 256;

export class HealthShell {
  private readonly tracked = new Map<string, Tracked>();
  private readonly early = new Map<string, HealthStatus>();
  private stopped = false;

  constructor(private readonly o: HealthShellOptions) {}

  /** Subscribes to a runtime that checks by itself (docker); returns the unsubscribe, if any. */
  watch(rt: Runtime): (() => void) | undefined {
    return rt.onHealth?.((taskId, status, detail) => this.fromRuntime(taskId, status, detail));
  }

  private fromRuntime(taskId: string, status: HealthStatus, detail?: string): void {
    const t = this.tracked.get(taskId);
    if (!t) {
      this.early.delete(taskId);
      this.early.set(taskId, status);
      if (this.early.size > EARLY_MAX) this.early.delete(this.early.keys().next().value as string);
      return;
    }
    if (t.probe || t.status === status) return;
    t.status = status;
    t.reason = status === 'unhealthy' ? `health check failed (docker${detail ? `; last: ${detail}` : ''})` : '';
    this.o.log.info({ task: taskId, health: status }, 'task health changed');
    this.o.onChange(taskId, status);
  }

  /**
   * Tracks a task that just started or was adopted. Returns its health now, or null when it
   * has no check (it is a backend at once).
   */
  begin(taskId: string, rt: Runtime, info: TaskInfo, check: HealthcheckSpec | undefined): HealthStatus | null {
    this.end(taskId);
    if (rt.onHealth) {
      const status = this.early.get(taskId) ?? info.health;
      this.early.delete(taskId);
      if (!status) return null;
      this.tracked.set(taskId, { status, reason: status === 'unhealthy' ? 'health check failed (docker)' : '' });
      return status;
    }
    const spec = probeOf(check);
    if (!spec) return null;
    const t: Tracked = { status: 'starting', reason: '', probe: { rt, spec, policy: new HealthPolicy(spec, this.o.clock.now()), timer: null, running: false } };
    this.tracked.set(taskId, t);
    this.arm(taskId, t);
    return 'starting';
  }

  status(taskId: string): HealthStatus | null {
    return this.tracked.get(taskId)?.status ?? null;
  }

  /** Why the task is unhealthy (for its error), '' when it is not. */
  reason(taskId: string): string {
    return this.tracked.get(taskId)?.reason ?? '';
  }

  /** Stops tracking (task stopping, stopped or gone). Idempotent. */
  end(taskId: string): void {
    const t = this.tracked.get(taskId);
    t?.probe?.timer?.cancel();
    this.tracked.delete(taskId);
  }

  stop(): void {
    this.stopped = true;
    for (const id of [...this.tracked.keys()]) this.end(id);
    this.early.clear();
  }

  private arm(taskId: string, t: Tracked): void {
    const p = t.probe!;
    if (this.stopped || this.tracked.get(taskId) !== t) return;
    const delay = Math.max(0, p.policy.nextDeadline() - this.o.clock.now());
    p.timer = this.o.clock.setTimer(delay, () => {
      p.timer = null;
      this.fire(taskId, t);
    });
  }

  private fire(taskId: string, t: Tracked): void {
    const p = t.probe!;
    if (this.tracked.get(taskId) !== t) return;
    const id = p.policy.tick(this.o.clock.now());
    this.settle(taskId, t); // a tick may have counted a timed-out probe
    if (id !== null) {
      p.running = true;
      void p.rt.exec(taskId, p.spec.argv, { timeoutMs: p.spec.timeoutMs }).then(
        (r) => ({ ok: r.code === 0, out: `exit ${r.code}${(r.stdout + r.stderr).trim() ? `: ${(r.stdout + r.stderr).trim().slice(0, 200)}` : ''}` }),
        (e: unknown) => ({ ok: false, out: e instanceof Error ? e.message : String(e) }),
      ).then(({ ok, out }) => {
        p.running = false;
        if (this.tracked.get(taskId) !== t) return;
        p.policy.result(id, ok, this.o.clock.now(), out);
        this.settle(taskId, t);
        p.timer?.cancel();
        this.arm(taskId, t);
      });
    }
    if (this.tracked.get(taskId) === t) this.arm(taskId, t);
  }

  /** Reports a status change of a probed task. */
  private settle(taskId: string, t: Tracked): void {
    const p = t.probe!;
    const now = p.policy.status;
    if (now === t.status) return;
    t.status = now;
    const last = p.policy.log[p.policy.log.length - 1];
    t.reason = now === 'unhealthy' ? `health check failed ${p.policy.failingStreak} times${last ? ` (last: ${last.output})` : ''}` : '';
    this.o.log.info({ task: taskId, health: now, last: last?.output }, 'task health changed');
    this.o.onChange(taskId, now);
  }
}
