/**
 * Waiting in unit tests, in one place (it was written out in eight test files). `until` polls a
 * condition on real time; `stepUntil` advances a ManualClock instead, so a test of a subsystem on
 * simulated time never sleeps. Both fail with what they waited on and the last value they saw
 * (or the last error the condition threw): a timeout must say why, never just "timed out".
 */
import type { ManualClock } from '../../src/core/clock.js';

function show(v: unknown): string {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.length > 500 ? `${s.slice(0, 500)}…` : s;
  } catch {
    return String(v);
  }
}

/** Lets pending promise callbacks and immediate timers run (a few event-loop turns). */
export async function flush(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
}

/**
 * Polls `fn` every `stepMs` until it returns a truthy value (returned), or throws after `ms` with
 * `what` and the last value or error.
 */
export async function until<T>(what: string, fn: () => T | Promise<T>, ms = 3000, stepMs = 5): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown = '(not evaluated)';
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what} (last: ${show(last)})`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/**
 * Advances `clock` by `stepMs` at a time (letting promise callbacks run between steps) until `fn`
 * is truthy, at most `maxMs` of simulated time. Returns the value and the simulated ms it took.
 */
export async function stepUntil<T>(clock: ManualClock, what: string, fn: () => T | Promise<T>, opts: { stepMs?: number; maxMs?: number } = {}): Promise<{ value: T; ms: number }> {
  const step = opts.stepMs ?? 10;
  const max = opts.maxMs ?? 60_000;
  const t0 = clock.now();
  let last: unknown = '(not evaluated)';
  for (;;) {
    await flush();
    try {
      const v = await fn();
      if (v) return { value: v, ms: clock.now() - t0 };
      last = v;
    } catch (e) {
      last = e;
    }
    if (clock.now() - t0 >= max) throw new Error(`not reached after ${max} ms of simulated time: ${what} (last: ${show(last)})`);
    clock.advance(step);
  }
}

/**
 * Awaits `p` — a subsystem call that waits on its own timers (idle(), settled(), stop()) — while
 * advancing `clock` by `stepMs` at a time, at most `maxMs` of simulated time. Returns p's value
 * and the simulated ms it took; a rejection of `p` is passed on unchanged.
 */
export async function stepAwait<T>(clock: ManualClock, what: string, p: Promise<T>, opts: { stepMs?: number; maxMs?: number } = {}): Promise<{ value: T; ms: number }> {
  const step = opts.stepMs ?? 10;
  const max = opts.maxMs ?? 60_000;
  const t0 = clock.now();
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  p.then((value) => (outcome = { ok: true, value }), (error: unknown) => (outcome = { ok: false, error }));
  for (;;) {
    await flush();
    if (outcome?.ok) return { value: outcome.value, ms: clock.now() - t0 };
    if (outcome) throw outcome.error;
    if (clock.now() - t0 >= max) throw new Error(`still pending after ${max} ms of simulated time: ${what} (${clock.pendingTimers} timer(s) pending)`);
    clock.advance(step);
  }
}

/**
 * Lets `ms` of simulated time pass in steps of `stepMs` (promise callbacks run between steps), for
 * tests that prove something does NOT happen within a period.
 */
export async function stepFor(clock: ManualClock, ms: number, stepMs = 10): Promise<void> {
  const end = clock.now() + ms;
  while (clock.now() < end) {
    await flush();
    clock.set(Math.min(end, clock.now() + stepMs));
  }
  await flush();
}
