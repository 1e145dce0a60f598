import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clampHealth, expectedConfirmations, pushPullScale, remainingSuspicionTime, retransmitLimit, scaleByHealth, suspicionTimeout,
} from '../../../src/core/gossip/formulas.js';

describe('retransmitLimit = mult × ⌈log10(n+1)⌉ (memberlist util_test)', () => {
  const table: [number, number, number][] = [
    [3, 0, 0], [3, 1, 3], [3, 9, 3], [3, 10, 6], [3, 99, 6], [3, 100, 9], [3, 999, 9], [3, 1000, 12], [4, 16, 8], [4, 32, 8],
  ];
  for (const [mult, n, want] of table) test(`mult=${mult} n=${n} → ${want}`, () => assert.equal(retransmitLimit(mult, n), want));
});

describe('suspicionTimeout = mult × max(1, log10 n) × interval (memberlist util_test)', () => {
  const table: [number, number, number, number][] = [
    [5, 5, 1000, 5000], [4, 1, 1000, 4000], [4, 10, 1000, 4000], [4, 100, 1000, 8000], [4, 1000, 200, 2400],
    [3, 1000, 1000, 9000], [5, 50, 1000, 8494], // 5 × log10(50)=1.69897 × 1 s, floored to ms
  ];
  for (const [mult, n, iv, want] of table) test(`mult=${mult} n=${n} interval=${iv} → ${want}`, () => assert.equal(suspicionTimeout(mult, n, iv), want));
});

describe('remainingSuspicionTime: log decay from max to min over k confirmations (memberlist suspicion_test)', () => {
  // memberlist's table: min 2 s, max 30 s, k 3.
  const table: [number, number, number, number][] = [
    [0, 3, 0, 30_000], [1, 3, 2_000, 14_000], [2, 3, 3_000, 4_810], [3, 3, 4_000, -2_000], [4, 3, 5_000, -3_000], [5, 3, 10_000, -8_000],
  ];
  for (const [n, k, elapsed, want] of table) {
    test(`n=${n} k=${k} elapsed=${elapsed} → ${want}`, () => assert.equal(remainingSuspicionTime(n, k, elapsed, 2000, 30_000), want));
  }
  test('k < 1 means the min timeout from the start', () => assert.equal(remainingSuspicionTime(0, 0, 500, 2000, 30_000), 1500));
  test('never below min', () => assert.equal(remainingSuspicionTime(100, 3, 0, 2000, 30_000), 2000));
});

describe('local health awareness scales timeouts by (score+1), score ∈ [0, max-1]', () => {
  const table: [number, number, number, number][] = [[500, 0, 8, 500], [500, 1, 8, 1000], [500, 7, 8, 4000], [500, 20, 8, 4000], [500, -3, 8, 500], [500, 5, 1, 500]];
  for (const [t, s, max, want] of table) test(`timeout=${t} score=${s} max=${max} → ${want}`, () => assert.equal(scaleByHealth(t, s, max), want));
  test('clamp', () => {
    assert.equal(clampHealth(-1, 8), 0);
    assert.equal(clampHealth(9, 8), 7);
    assert.equal(clampHealth(3, 8), 3);
  });
});

describe('pushPullScale (memberlist util_test)', () => {
  const iv = 1000;
  const table: [number, number][] = [[0, 1000], [1, 1000], [32, 1000], [33, 2000], [64, 2000], [65, 3000], [128, 3000], [129, 4000], [1000, 6000]];
  for (const [n, want] of table) test(`n=${n} → ${want}`, () => assert.equal(pushPullScale(iv, n), want));
});

describe('expectedConfirmations = suspicionMult − 2, or 0 in tiny clusters', () => {
  const table: [number, number, number][] = [[4, 1, 0], [4, 3, 0], [4, 4, 2], [4, 100, 2], [6, 5, 0], [6, 6, 4], [1, 100, 0]];
  for (const [mult, n, want] of table) test(`mult=${mult} n=${n} → ${want}`, () => assert.equal(expectedConfirmations(mult, n), want));
});
