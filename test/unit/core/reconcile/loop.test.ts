import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, LoopCore } from '../../../../src/core/reconcile/loop.js';

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
