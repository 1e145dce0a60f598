/** The DNS sandbox bind retry policy (src/core/dns/sandbox-retry.ts) as table tests on simulated time. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BindRetries, rescanDelayMs, retryDelayMs } from '../../../../src/core/dns/sandbox-retry.js';

describe('dns sandbox bind retries', () => {
  test('retryDelayMs doubles from 250 ms to a 30 s cap', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 8, 9, 50].map(retryDelayMs), [250, 250, 500, 1000, 2000, 30_000, 30_000, 30_000]);
  });

  test('rescanDelayMs: periodic, sooner for a due retry, never under 50 ms', () => {
    const rows: Array<[number, number, number | undefined, number]> = [
      [0, 2000, undefined, 2000], [0, 2000, 250, 250], [0, 2000, 5000, 2000], [1000, 2000, 1010, 50], [1000, 2000, 900, 50], [0, 10, undefined, 50],
    ];
    for (const [now, rescan, at, want] of rows) assert.equal(rescanDelayMs(now, rescan, at), want, `${now} ${rescan} ${at}`);
  });

  test('BindRetries: failures back off per namespace; clear, retain, nextDeadline', () => {
    const r = new BindRetries();
    assert.equal(r.nextDeadline(), undefined);
    assert.equal(r.due('a', 0), true, 'never failed');
    assert.equal(r.failed('a', 1000, 'x'), 1);
    assert.equal(r.due('a', 1249), false);
    assert.equal(r.due('a', 1250), true);
    assert.equal(r.failed('a', 1250, 'y'), 2);
    assert.equal(r.nextDeadline(), 1750);
    r.failed('b', 1300, 'z');
    assert.equal(r.nextDeadline(), 1550);
    assert.deepEqual(r.view(), [{ netns: 'a', attempts: 2, error: 'y' }, { netns: 'b', attempts: 1, error: 'z' }]);
    r.retain(new Set(['a']));
    assert.deepEqual(r.view().map((x) => x.netns), ['a']);
    r.clear('a');
    assert.equal(r.nextDeadline(), undefined);
    assert.equal(r.failed('a', 5000, 'again'), 1, 'a cleared namespace starts over');
  });
});
