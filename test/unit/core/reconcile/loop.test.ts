import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, LoopCore, paceMs } from '../../../../src/core/reconcile/loop.js';

const cfg = { minBackoffMs: 500, maxBackoffMs: 10_000 };

describe('reconcile loop core (simulated time)', () => {
  test('backoffMs: 0 failures → 0, then doubling from min, capped at max', () => {
    const table: Array<[number, number]> = [[0, 0], [1, 500], [2, 1000], [3, 2000], [5, 8000], [6, 10_000], [60, 10_000]];
    for (const [n, want] of table) assert.equal(backoffMs(cfg, n), want, `failures=${n}`);
  });

  test('marks coalesce: the earliest due time wins, later marks never postpone it', () => {
    const c = new LoopCore<string>(cfg);
    assert.equal(c.nextDeadline(), undefined);
    c.mark('a', 100, 30);
    c.mark('b', 110, 500);
    assert.equal(c.nextDeadline(), 130);
    c.mark('c', 120, 0);
    assert.equal(c.nextDeadline(), 120);
    assert.equal(c.start(119), undefined, 'not due yet');
    assert.deepEqual(c.start(120)?.sort(), ['a', 'b', 'c']);
  });

  test('one run at a time: marks during a run wait for it, then are due at once', () => {
    const c = new LoopCore<string>(cfg);
    c.mark('a', 0);
    assert.deepEqual(c.start(0), ['a']);
    c.mark('b', 5);
    assert.equal(c.nextDeadline(), undefined, 'no deadline while running');
    assert.equal(c.start(5), undefined, 'never two runs');
    c.finish(50);
    assert.equal(c.nextDeadline(), 5, 'due since its mark');
    assert.deepEqual(c.start(50), ['b']);
  });

  test('a run with nothing dirty never starts; a mark of a key already taken by a run is not lost', () => {
    const c = new LoopCore<string>(cfg);
    assert.equal(c.start(0), undefined);
    c.mark('a', 0);
    c.start(0);
    c.mark('a', 1);
    c.finish(2);
    assert.deepEqual(c.start(2), ['a']);
  });

  test('failure: failed keys come back after a doubling back-off; success resets it', () => {
    const c = new LoopCore<string>(cfg);
    c.mark('a', 0);
    c.mark('b', 0);
    c.start(0);
    c.finish(10, ['b']);
    assert.equal(c.consecutiveFailures, 1);
    assert.equal(c.nextDeadline(), 510);
    assert.deepEqual(c.start(510), ['b']);
    c.finish(520, ['b']);
    assert.equal(c.nextDeadline(), 1520, 'second failure: 1000 ms');
    c.start(1520);
    c.finish(1530);
    assert.equal(c.consecutiveFailures, 0);
    assert.equal(c.nextDeadline(), undefined);
    assert.deepEqual(c.counters, { runs: 3, failedRuns: 2 });
  });

  test('a mark during a failing run keeps its own earlier due time (the retry rides along)', () => {
    const c = new LoopCore<string>(cfg);
    c.mark('a', 0);
    c.start(0);
    c.mark('b', 5, 0);
    c.finish(10, ['a']);
    assert.equal(c.nextDeadline(), 5);
    assert.deepEqual(c.start(10)?.sort(), ['a', 'b']);
  });

  test('stop: drops pending keys, refuses marks, lets a run in flight finish', () => {
    const c = new LoopCore<string>(cfg);
    c.mark('a', 0);
    c.start(0);
    c.mark('b', 1);
    c.stop();
    c.mark('c', 2);
    c.finish(3, ['a']);
    assert.equal(c.nextDeadline(), undefined);
    assert.equal(c.start(1000), undefined);
    assert.throws(() => c.finish(4), /without a run/);
  });
});

describe('reconcile loop pacing (maxDuty, simulated time)', () => {
  const paced = { ...cfg, maxDuty: 0.25, maxPaceMs: 250 };

  test('paceMs: run time × (1/maxDuty − 1), capped; 0 without pacing or for a bad duration', () => {
    const table: Array<[number, number]> = [[0, 0], [1, 3], [20, 60], [83.4, 250], [84, 250], [1000, 250], [-5, 0], [NaN, 0]];
    for (const [d, want] of table) assert.equal(paceMs(paced, d), want, `run ${d} ms`);
    assert.equal(paceMs(cfg, 1000), 0, 'no maxDuty: no pacing');
    assert.equal(paceMs({ ...cfg, maxDuty: 1 }, 1000), 0);
    assert.equal(paceMs({ ...cfg, maxDuty: 0 }, 1000), 0, 'a nonsensical duty disables pacing rather than stalling the loop');
    assert.equal(paceMs({ ...cfg, maxDuty: 0.5 }, 40), 40, 'default cap 500');
    assert.equal(paceMs({ ...cfg, maxDuty: 0.1 }, 100), 500);
  });

  test('marks during and after a run wait for the gap: one run takes them all', () => {
    const c = new LoopCore<string>(paced);
    c.mark('a', 0, 30);
    assert.deepEqual(c.start(30), ['a']);
    c.mark('b', 40, 30); // due 70
    c.finish(50); // ran 20 ms: next no earlier than 50 + 60
    assert.equal(c.nextDeadline(), 110);
    assert.equal(c.start(70), undefined, 'its own due time has come, the gap has not ended');
    c.mark('c', 80, 30);
    c.mark('d', 100, 0);
    assert.equal(c.nextDeadline(), 110);
    assert.deepEqual(c.start(110)?.sort(), ['b', 'c', 'd']);
  });

  test('a lone change after a quiet spell is not delayed; a failed run is retried on its back-off, not paced', () => {
    const c = new LoopCore<string>(paced);
    c.mark('a', 0);
    c.start(0);
    c.finish(100); // gap until 400 (capped at 250: 350)
    c.mark('b', 1000, 30);
    assert.equal(c.nextDeadline(), 1030, 'the gap ended long ago');
    c.start(1030);
    c.finish(1230, ['b']); // failed after 200 ms
    assert.equal(c.nextDeadline(), 1730, 'back-off 500, pacing bound from the last success only');
  });

  test('100 changes at 10 ms spacing, runs of 20 ms: 13 runs with pacing, 25 without', () => {
    const runs = (config: typeof cfg): number => {
      const c = new LoopCore<number>(config);
      let runEnd: number | undefined;
      let n = 0;
      for (let t = 0; t <= 2000; t++) {
        if (runEnd === t) (c.finish(t), (runEnd = undefined));
        if (t % 10 === 0 && t < 1000) c.mark(t / 10, t, 30);
        if (runEnd === undefined && c.start(t)) (n++, (runEnd = t + 20));
      }
      assert.equal(c.pending().length, 0, 'every change applied');
      return n;
    };
    assert.equal(runs(cfg), 25);
    assert.equal(runs(paced), 13);
  });
});
