import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kindOf, MIN_SAMPLES_NEAR_FLOOR, NEAR_FLOOR, ratioInterval, rowVerdict, timeSpread, verdict, withStatus } from '../../../bench/lib/rounds.js';
import { pairedRow } from '../../../bench/lib/results.js';

test('kindOf: time units are time, everything else a rate', () => {
  for (const u of ['ms', 's', 'µs', 'us', 'ns']) assert.equal(kindOf(u), 'time', u);
  for (const u of ['req/s', 'queries/s', 'Mbit/s', 'B/s', 'KiB', '']) assert.equal(kindOf(u), 'rate', u);
});

test('ratioInterval: each side ± its floor, oriented like roundRatio; unbounded when a side is within its floor', () => {
  assert.deepEqual(ratioInterval(10, 20, 'lower', 0), [2, 2]);
  assert.deepEqual(ratioInterval(10, 20, 'lower', 1), [19 / 11, 21 / 9]);
  assert.deepEqual(ratioInterval(10, 20, 'lower', 1, 0), [20 / 11, 20 / 9]); // a constant peer has no jitter
  assert.deepEqual(ratioInterval(20, 10, 'higher', 1), [19 / 11, 21 / 9]);
  assert.deepEqual(ratioInterval(1, 20, 'lower', 1), [19 / 2, Number.POSITIVE_INFINITY]);
});

test('timeSpread: 1 when the intervals overlap, max(lo)/min(hi) when they do not, max/min with zero floors', () => {
  assert.equal(timeSpread([[1, 3], [2, 4]]), 1);
  assert.equal(timeSpread([[1, 2], [3, 4]]), 1.5);
  assert.equal(timeSpread([[2, 2], [3, 3], [2.5, 2.5]]), 1.5);
});

test('rowVerdict by kind: a few ms of jitter is allowed by the floor, a real spread is not', () => {
  // last session's rejected rows, replayed: scheduler 1k (2–4 ms vs a published constant), 5 samples per round
  const sched = pairedRow('place 1k', 'ms', [2, 4, 3], [189, 189, 189], 'swarmkit (published)', 'lower', { floor: 1, peerFloor: 0, samplesPerRound: 5 });
  assert.equal(rowVerdict(sched).status, 'ok');
  // the same with one sample per round: within 10× its floor, a single sample is a draw
  const one = rowVerdict({ ...sched, samplesPerRound: 1 });
  assert.equal(one.status, 'rejected');
  assert.match((one as { why: string }).why, new RegExp(`within ${NEAR_FLOOR}× its floor .* fewer than ${MIN_SAMPLES_NEAR_FLOOR}`));
  // without a floor (rate rule) 2–4 ms is a 2× spread
  assert.equal(rowVerdict({ ...sched, floor: 0 }).status, 'rejected');
  // a spread far beyond the floor still rejects: 11 vs 22 ms, floor 1 ms
  const recon = rowVerdict(pairedRow('reconcile', 'ms', [11, 22, 12], null, 'none', 'lower', { floor: 1 }));
  assert.equal(recon.status, 'rejected');
  assert.match((recon as { why: string }).why, /no peer; its own figures \(11–22\) spread 1\.75× beyond the ±1 ms floor/);
  // a figure at or below its floor: unresolved, no ratio claimed, not a rejection
  const sub = pairedRow('p99 at 5000 qps', 'ms', [0.04, 0.72, 0.3], [0.05, 0.2, 0.1], 'dnsmasq', 'lower', { floor: 0.1, samplesPerRound: 10000 });
  assert.equal(rowVerdict(sub).status, 'unresolved');
  // rates ignore any floor: plain max/min of the ratios
  assert.equal(rowVerdict(pairedRow('qps', 'queries/s', [100, 200], [100, 100], 'p', 'higher', { floor: 1000 })).status, 'rejected');
  // counts are never checked
  assert.equal(rowVerdict(pairedRow('false deaths', 'members', [1, 5], [1, 1], 'p', 'lower', { kind: 'count' })).status, 'unchecked');
  // ratios 2.0 and 1.67 (1.2×) hold with or without the floor
  assert.equal(rowVerdict(pairedRow('sync', 'ms', [20, 24], [40, 40], 'p', 'lower', { floor: 1 })).status, 'ok');
});

test('verdict lists unresolved rows apart from rejected ones; they do not reject the result', () => {
  const v = verdict([
    pairedRow('fine', 'ms', [100, 105], [200, 200], 'p', 'lower', { floor: 1 }),
    pairedRow('tiny', 'ms', [0.05, 0.06], [0.05, 0.05], 'p', 'lower', { floor: 0.1, samplesPerRound: 1000 }),
  ]);
  assert.equal(v.ok, true);
  assert.deepEqual(withStatus(v, 'unresolved'), ['tiny']);
  assert.deepEqual(withStatus(v, 'ok'), ['fine']);
});

test('pairedRow pooled: ours/peer/ratio from every sample, min–max and spread from the rounds', () => {
  const r = pairedRow('p99', 'ms', [300, 400, 350], [2000, 2000, 2000], 'swarm 2 s', 'lower', { pooled: { ours: 500, peer: 2000 }, floor: 10, peerFloor: 0 });
  assert.equal(r.ours, 500);
  assert.equal(r.ratio, 4);
  assert.equal(r.headline, 'pooled');
  assert.equal(r.ratioMin, 5);
  assert.equal(r.ratioMax, 6.667);
  assert.equal(rowVerdict(r).status, 'ok');
});

test('rowVerdict: an unbounded round (never completed) rejects, even with no ratio at all', () => {
  const inf = Number.POSITIVE_INFINITY;
  for (const r of [
    pairedRow('p99', 'ms', [inf, inf], [2000, 2000], 'swarm', 'lower', { floor: 20, peerFloor: 0 }),
    pairedRow('p99', 'ms', [300, inf], [2000, 2000], 'swarm', 'lower'),
    pairedRow('own', 'ms', [inf, 5], null, 'none', 'lower'),
  ]) {
    const v = rowVerdict(r);
    assert.equal(v.status, 'rejected');
    assert.match((v as { why: string }).why, /round\(s\) unbounded/);
  }
});
