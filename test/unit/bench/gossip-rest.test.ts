import { test } from 'node:test';
import assert from 'node:assert/strict';
import { restTiming } from '../../../bench/lib/netns-cluster.js';

// the rest window covers one whole push-pull period as both kinds scale it with N (local preset: 5 s base)
for (const [n, restMs, settle, window] of [
  [16, 5000, 5000, 5000],
  [32, 5000, 5000, 5000],
  [33, 5000, 10_000, 10_000],
  [64, 5000, 10_000, 10_000],
  [128, 5000, 15_000, 15_000],
  [64, 30_000, 10_000, 30_000],
  [16, 1000, 5000, 5000],
] as const) {
  test(`restTiming N=${n}, --rest-ms ${restMs}: settle ${settle} ms, window ${window} ms`, () => {
    assert.deepEqual(restTiming(restMs, 5000, n), { settleMs: settle, windowMs: window });
  });
}

test('restTiming: settle wait stays within 2–20 s', () => {
  assert.equal(restTiming(5000, 500, 8).settleMs, 2000);
  assert.equal(restTiming(5000, 30_000, 8).settleMs, 20_000);
});
