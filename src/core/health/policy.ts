/**
 * Health of one task, as docker's health monitor decides it, on injected time (pure):
 *
 * - the task starts `starting`; the first probe runs one interval after the start, then one
 *   interval after each probe ends (probes never overlap);
 * - a success makes the task `healthy` (also inside the start period) and resets the streak;
 * - a failure (non-zero exit, or no answer within the timeout) adds to the failing streak —
 *   except for a probe begun inside the start period while the task was never healthy yet:
 *   that one does not count (the task stays `starting`);
 * - when the streak reaches `retries` the task is `unhealthy`. Like docker, probing goes on
 *   and a later success makes it healthy again; the agent does not wait for that: it drains
 *   and replaces an unhealthy task (src/agent/worker/health.ts).
 *
 * Driving it: `nextDeadline()` says when to call `tick(now)`; a tick that returns a probe
 * number means "run the check now"; its outcome goes back through `result(probe, ok, now)`.
 * A result that comes after the probe's timeout (the tick already counted it as a failure)
 * is ignored, as is any result for a probe that is not the current one.
 */
import type { HealthProbe } from './spec.js';

export type HealthStatus = 'starting' | 'healthy' | 'unhealthy';
export const HEALTH_STATUSES: readonly HealthStatus[] = ['starting', 'healthy', 'unhealthy'];

export type Timing = Pick<HealthProbe, 'intervalMs' | 'timeoutMs' | 'retries' | 'startPeriodMs'>;

/** One probe's outcome as kept for `inspect` (docker keeps the last five). */
export interface ProbeLog {
  at: number;
  ok: boolean;
  output: string;
}
export const PROBE_LOG_MAX = 5;

export class HealthPolicy {
  private statusNow: HealthStatus = 'starting';
  private streak = 0;
  private seq = 0;
  /** The probe in flight: its number and when it must have answered. */
  private inFlight: { id: number; began: number; deadline: number } | null = null;
  private nextProbeAt: number;
  private readonly logs: ProbeLog[] = [];

  constructor(private readonly t: Timing, private readonly startedAt: number) {
    this.nextProbeAt = startedAt + t.intervalMs;
  }

  get status(): HealthStatus {
    return this.statusNow;
  }

  get failingStreak(): number {
    return this.streak;
  }

  get log(): readonly ProbeLog[] {
    return this.logs;
  }

  /** When tick() must run next: the in-flight probe's timeout, else the next probe. */
  nextDeadline(): number {
    return this.inFlight ? this.inFlight.deadline : this.nextProbeAt;
  }

  /** A probe number when a check must start now; counts a timed-out probe as a failure. */
  tick(now: number): number | null {
    if (this.inFlight) {
      if (now < this.inFlight.deadline) return null;
      this.record(false, now, `timed out after ${this.t.timeoutMs} ms`);
    }
    if (now < this.nextProbeAt) return null;
    this.inFlight = { id: ++this.seq, began: now, deadline: now + this.t.timeoutMs };
    return this.seq;
  }

  /** Outcome of probe `id`; returns the status after it (unchanged for a stale result). */
  result(id: number, ok: boolean, now: number, output = ''): HealthStatus {
    if (!this.inFlight || this.inFlight.id !== id) return this.statusNow;
    if (now >= this.inFlight.deadline) {
      this.record(false, now, `timed out after ${this.t.timeoutMs} ms`);
      return this.statusNow;
    }
    this.record(ok, now, output);
    return this.statusNow;
  }

  private record(ok: boolean, now: number, output: string): void {
    const began = this.inFlight?.began ?? now;
    this.inFlight = null;
    this.nextProbeAt = now + this.t.intervalMs;
    this.logs.push({ at: now, ok, output: output.slice(0, 4096) });
    if (this.logs.length > PROBE_LOG_MAX) this.logs.shift();
    if (ok) {
      this.streak = 0;
      this.statusNow = 'healthy';
      return;
    }
    // Docker's rule: only while still `starting` (never healthy yet), by when the probe began.
    if (this.statusNow === 'starting' && inStartPeriod(this.t, this.startedAt, began)) return;
    this.streak++;
    if (this.streak >= this.t.retries) this.statusNow = 'unhealthy';
  }
}

/** A probe that began before startedAt + startPeriod is inside the start period. */
export function inStartPeriod(t: Pick<Timing, 'startPeriodMs'>, startedAt: number, now: number): boolean {
  return now < startedAt + t.startPeriodMs;
}
