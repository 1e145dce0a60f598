/** The agent's join retry backs off (doubling, capped, jittered), so busy seeds are not flooded by retries. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinRetryDelayMs } from '../../../../src/agent/gossip/gossip.js';

test('join retry: 1 s doubling to a 16 s cap, jitter within [½, 1] of the step', () => {
  const rows: Array<[number, number, number]> = [[0, 0, 500], [0, 0.999, 1000], [1, 0, 1000], [3, 0.5, 6000], [4, 0.999, 15_992], [5, 0.5, 12_000], [60, 0, 8000]];
  for (const [attempt, rand, want] of rows) assert.equal(joinRetryDelayMs(attempt, rand), want, `attempt ${attempt}, rand ${rand}`);
});
