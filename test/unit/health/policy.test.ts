/**
 * The health policy on simulated time (docker's health monitor rules): table-driven runs of
 * probe outcomes, checked step by step for status, streak and the next deadline.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthPolicy, inStartPeriod, PROBE_LOG_MAX, type HealthStatus } from '../../../src/core/health/policy.js';

const T = { intervalMs: 1000, timeoutMs: 300, retries: 3, startPeriodMs: 0 };

/** Drives a policy: at each step, ticks at its deadline and answers the probe after `tookMs` with `ok` (or never: 'hang'). */
function run(timing: typeof T, outcomes: ReadonlyArray<boolean | 'hang'>, tookMs = 50): Array<{ at: number; status: HealthStatus; streak: number }> {
  const p = new HealthPolicy(timing, 0);
  const out: Array<{ at: number; status: HealthStatus; streak: number }> = [];
  for (const o of outcomes) {
    const at = p.nextDeadline();
    const id = p.tick(at);
    assert.notEqual(id, null, `a probe is due at ${at}`);
    if (o === 'hang') {
      const dl = p.nextDeadline();
      assert.equal(dl, at + timing.timeoutMs, 'the next deadline is the probe timeout');
      assert.equal(p.tick(dl), null, 'the timeout counts the failure; the next probe is one interval later');
      out.push({ at: dl, status: p.status, streak: p.failingStreak });
      continue;
    }
    p.result(id!, o, at + tookMs);
    out.push({ at: at + tookMs, status: p.status, streak: p.failingStreak });
  }
  return out;
}

describe('health policy', () => {
  test('starts `starting`; the first probe is one interval after the start', () => {
    const p = new HealthPolicy(T, 5000);
    assert.equal(p.status, 'starting');
    assert.equal(p.nextDeadline(), 6000);
    assert.equal(p.tick(5999), null);
    assert.equal(p.tick(6000), 1);
    assert.equal(p.tick(6001), null, 'probes never overlap');
  });

  const cases: Array<{ name: string; timing?: Partial<typeof T>; outcomes: Array<boolean | 'hang'>; want: HealthStatus[]; streaks?: number[] }> = [
    { name: 'first success → healthy', outcomes: [true], want: ['healthy'] },
    { name: 'retries consecutive failures → unhealthy', outcomes: [false, false, false], want: ['starting', 'starting', 'unhealthy'], streaks: [1, 2, 3] },
    { name: 'a success resets the streak', outcomes: [false, false, true, false, false], want: ['starting', 'starting', 'healthy', 'healthy', 'healthy'], streaks: [1, 2, 0, 1, 2] },
    { name: 'healthy → unhealthy after retries failures', outcomes: [true, false, false, false], want: ['healthy', 'healthy', 'healthy', 'unhealthy'] },
    { name: 'unhealthy → healthy again on a success (docker goes on probing)', outcomes: [false, false, false, true], want: ['starting', 'starting', 'unhealthy', 'healthy'] },
    { name: 'a timed-out probe is a failure', outcomes: ['hang', 'hang', 'hang'], want: ['starting', 'starting', 'unhealthy'] },
    { name: 'retries 1: one failure is enough', timing: { retries: 1 }, outcomes: [false], want: ['unhealthy'] },
    // start period 2500: probes begin at 1000, 2050, 3100 → the first two do not count.
    { name: 'failures inside the start period do not count', timing: { startPeriodMs: 2500 }, outcomes: [false, false, false, false, false], want: ['starting', 'starting', 'starting', 'starting', 'unhealthy'], streaks: [0, 0, 1, 2, 3] },
    { name: 'a success inside the start period makes it healthy', timing: { startPeriodMs: 10_000 }, outcomes: [false, true], want: ['starting', 'healthy'] },
    { name: 'once healthy, failures inside the start period count', timing: { startPeriodMs: 10_000 }, outcomes: [true, false, false, false], want: ['healthy', 'healthy', 'healthy', 'unhealthy'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const steps = run({ ...T, ...c.timing }, c.outcomes);
      assert.deepEqual(steps.map((s) => s.status), c.want);
      if (c.streaks) assert.deepEqual(steps.map((s) => s.streak), c.streaks);
    });
  }

  test('the next probe is one interval after the previous one ended', () => {
    const p = new HealthPolicy(T, 0);
    const id = p.tick(1000)!;
    p.result(id, true, 1200);
    assert.equal(p.nextDeadline(), 2200);
  });

  test('a late or stale result is ignored (the timeout already counted it)', () => {
    const p = new HealthPolicy({ ...T, retries: 1 }, 0);
    const id = p.tick(1000)!;
    assert.equal(p.result(id + 1, true, 1100), 'starting', 'stale probe number');
    assert.equal(p.tick(1300), null);
    assert.equal(p.status, 'unhealthy', 'timed out at 1300');
    assert.equal(p.result(id, true, 1400), 'unhealthy', 'the late success of the timed-out probe does not count');
    assert.equal(p.log.length, 1);
    assert.match(p.log[0]!.output, /timed out after 300 ms/);
  });

  test('a result at the deadline itself is a timeout', () => {
    const p = new HealthPolicy({ ...T, retries: 1 }, 0);
    const id = p.tick(1000)!;
    assert.equal(p.result(id, true, 1300), 'unhealthy');
  });

  test('keeps the last probe outputs only', () => {
    const p = new HealthPolicy(T, 0);
    for (let i = 0; i < PROBE_LOG_MAX + 3; i++) {
      const at = p.nextDeadline();
      p.result(p.tick(at)!, true, at + 1, `out ${i}`);
    }
    assert.equal(p.log.length, PROBE_LOG_MAX);
    assert.equal(p.log.at(-1)!.output, `out ${PROBE_LOG_MAX + 2}`);
  });

  test('inStartPeriod table', () => {
    for (const [start, period, now, want] of [[0, 0, 0, false], [0, 1000, 999, true], [0, 1000, 1000, false], [500, 1000, 1499, true]] as const) {
      assert.equal(inStartPeriod({ startPeriodMs: period }, start, now), want, `${start}+${period} @${now}`);
    }
  });
});
