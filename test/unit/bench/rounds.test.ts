import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MAX_SPREAD, batchSize, interleave, median, perRound, roundOrder, roundRatio, rowVerdict, spread, verdict } from '../../../bench/lib/rounds.js';
import { pairedRow, row, snapshot, verdictLine, writeResults } from '../../../bench/lib/results.js';

test('median: odd, even, empty, non-finite dropped', () => {
  const cases: [(number | null)[], number | null][] = [
    [[], null],
    [[null, Number.NaN], null],
    [[5], 5],
    [[3, 1, 2], 2],
    [[4, 1, 3, 2], 2.5],
    [[1, null, 9, Number.POSITIVE_INFINITY, 5], 5],
  ];
  for (const [xs, want] of cases) assert.equal(median(xs), want, JSON.stringify(xs));
});

test('perRound: the median of each consecutive group, rounded; a partial group is not a round', () => {
  assert.deepEqual(perRound([3, 1, 2, 10, 30, 20, 99], 3), [2, 20]);
  assert.deepEqual(perRound([1.234, 1.236], 1, 2), [1.23, 1.24]);
  assert.deepEqual(perRound([], 5), []);
  assert.throws(() => perRound([1], 0), /positive integer/);
});

test('batchSize: runs per sample to reach the target, within [1, max]; max when the estimate is unusable', () => {
  const cases: [number, number, number, number][] = [
    [1, 20, 50, 20],
    [1.5, 20, 50, 14],
    [0.1, 20, 50, 50],
    [40, 20, 50, 1],
    [0, 20, 50, 50],
    [Number.NaN, 20, 50, 50],
  ];
  for (const [est, target, max, want] of cases) assert.equal(batchSize(est, target, max), want, `${est} ${target} ${max}`);
});

test('roundRatio: oriented so > 1 is meshd better; no ratio for missing or non-positive figures', () => {
  const cases: [number | null, number | null, 'higher' | 'lower', number | null][] = [
    [200, 100, 'higher', 2],
    [200, 100, 'lower', 0.5],
    [50, 100, 'lower', 2],
    [0, 100, 'higher', null],
    [100, 0, 'lower', null],
    [null, 100, 'higher', null],
    [100, null, 'higher', null],
    [Number.NaN, 1, 'higher', null],
  ];
  for (const [o, p, b, want] of cases) assert.equal(roundRatio(o, p, b), want, `${o} ${p} ${b}`);
});

test('spread: max/min of finite positive ratios, null under two', () => {
  const cases: [(number | null)[], number | null][] = [
    [[], null],
    [[1.2], null],
    [[1.2, null], null],
    [[1, 1], 1],
    [[0.5, 1], 2],
    [[2, 1, 1.5], 2],
  ];
  for (const [xs, want] of cases) assert.equal(spread(xs), want, JSON.stringify(xs));
});

test('rowVerdict: ok within the bound, rejected beyond it, unchecked without rounds or ratio', () => {
  const base = { metric: 'm', ratio: 1 };
  const cases: [Parameters<typeof rowVerdict>[0], 'ok' | 'rejected' | 'unchecked', RegExp?][] = [
    [{ ...base, rounds: 3, roundRatios: [1, 1.1, 1.2] }, 'ok'],
    [{ ...base, rounds: 2, roundRatios: [1, 1.5] }, 'ok'], // the bound itself passes
    [{ ...base, rounds: 3, roundRatios: [1, 1.1, 1.6] }, 'rejected', /spread 1\.60× .* wider than 1\.5×/],
    [{ ...base, rounds: 3, roundRatios: [1, 1.1, 1.6], maxSpread: 2 }, 'ok'],
    [{ ...base, rounds: 1, roundRatios: [1] }, 'rejected', /single round/],
    [{ ...base, rounds: 3, roundRatios: [1, null, 1.1] }, 'rejected', /1 of 3 round\(s\) gave no ratio/],
    [{ metric: 'm', ratio: null, rounds: 3, roundRatios: [null, null, null] }, 'unchecked', /no ratio/],
    // no peer: its own figures are held to the bound
    [{ metric: 'm', ratio: null, rounds: 3, roundRatios: [null, null, null], oursRounds: [100, 110, 120] }, 'ok'],
    [{ metric: 'm', ratio: null, rounds: 3, roundRatios: [null, null, null], oursRounds: [100, 110, 200] }, 'rejected', /no peer; its own figures spread 2\.00×/],
    [{ metric: 'm', ratio: null, rounds: 3, roundRatios: [null, null, null], oursRounds: [100, null, 120] }, 'rejected', /1 of 3 round\(s\) gave no figure/],
    [{ metric: 'm', ratio: null, rounds: 2, roundRatios: [null, null], oursRounds: [0, 0] }, 'unchecked', /fewer than two positive/],
    [{ ...base }, 'unchecked', /without rounds/],
    // informative: shown with its reason, never checked, however wide
    [{ ...base, rounds: 3, roundRatios: [0.45, 0.9, 0.99], informative: 'CPU share of each side' }, 'unchecked', /informative: CPU share of each side/],
  ];
  for (const [r, status, why] of cases) {
    const v = rowVerdict(r);
    assert.equal(v.status, status, JSON.stringify(r));
    if (why) assert.match((v as { why: string }).why, why);
  }
  assert.equal(DEFAULT_MAX_SPREAD, 1.5);
});

test('verdict: one rejected row rejects the result and says which', () => {
  const v = verdict([
    { metric: 'good', ratio: 1, rounds: 3, roundRatios: [1, 1, 1.1] },
    { metric: 'bad', ratio: 1, rounds: 3, roundRatios: [0.5, 1, 2] },
    { metric: 'legacy', ratio: 3 },
  ]);
  assert.equal(v.ok, false);
  assert.equal(v.reasons.length, 1);
  assert.match(v.reasons[0]!, /^bad: ratio spread 4\.00×/);
  assert.deepEqual(v.rows.map((r) => r.status), ['ok', 'rejected', 'unchecked']);
  assert.equal(verdict([{ metric: 'legacy', ratio: 3 }]).ok, true);
});

test('roundOrder rotates the first side: A B, B A for two; A B C, B C A, C A B for three', () => {
  assert.deepEqual([0, 1, 2].map((r) => roundOrder(2, r)), [[0, 1], [1, 0], [0, 1]]);
  assert.deepEqual([0, 1, 2].map((r) => roundOrder(3, r)), [[0, 1, 2], [1, 2, 0], [2, 0, 1]]);
});

test('interleave runs every side once per round in rotating order and keeps samples per side', async () => {
  const log: string[] = [];
  const side = (name: string) => ({ name, run: async (r: number) => { log.push(`${name}${r}`); return r * 10 + (name === 'a' ? 1 : 2); } });
  const rounds: number[] = [];
  const got = await interleave(3, [side('a'), side('b')], { onRound: (r) => rounds.push(r) });
  assert.deepEqual(log, ['a0', 'b0', 'b1', 'a1', 'a2', 'b2']);
  assert.deepEqual(got, { a: [1, 11, 21], b: [2, 12, 22] });
  assert.deepEqual(rounds, [0, 1, 2]);
  await assert.rejects(interleave(0, [side('a')]), /positive integer/);
});

test('pairedRow: medians per side, the median of per-round ratios (not the ratio of medians), min–max', () => {
  // rounds: ours 10/20/30 vs peer 10/10/60 (lower is better): ratios 1, 0.5, 2 → median 1; ratio of medians 0.5
  const r = pairedRow('t', 'ms', [10, 20, 30], [10, 10, 60], 'peer', 'lower', { maxSpread: 5, spreadWhy: 'test' });
  assert.equal(r.ours, 20);
  assert.equal(r.peer, 10);
  assert.equal(r.ratio, 1);
  assert.equal(r.ratioMin, 0.5);
  assert.equal(r.ratioMax, 2);
  assert.equal(r.spread, 4);
  assert.equal(r.rounds, 3);
  assert.deepEqual(r.roundRatios, [1, 0.5, 2]);
  const none = pairedRow('t', 'ms', [1, 2], null, 'absent', 'lower');
  assert.equal(none.peer, null);
  assert.equal(none.ratio, null);
  assert.equal(rowVerdict(none).status, 'rejected'); // 1 → 2 is a 2× spread of its own
  assert.equal(rowVerdict(pairedRow('t', 'ms', [0, 0], null, 'absent', 'lower')).status, 'unchecked');
});

test('writeResults writes NAME.json when every row holds, NAME.rejected.json and exit code 1 when one does not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
  const code = process.exitCode;
  const log = console.log;
  const err = console.error;
  const table = console.table;
  const lines: string[] = [];
  console.error = console.table = () => undefined;
  console.log = (l: string) => void lines.push(String(l));
  try {
    const start = snapshot();
    const ok = writeResults('x', [pairedRow('a', 'ms', [10, 11, 10], [10, 10, 10], 'p', 'lower'), row('legacy', 'ms', 1, 2, 'p', 'lower')], { extra: 1 }, { dir, start });
    assert.equal(ok.verdict.ok, true);
    assert.equal(process.exitCode, code);
    const doc = JSON.parse(readFileSync(join(dir, 'x.json'), 'utf8')) as Record<string, any>;
    assert.equal(doc.extra, 1);
    assert.deepEqual(doc.load.start, start);
    assert.equal(typeof doc.load.end.loadavg1, 'number');
    assert.equal(typeof doc.load.end.freeMemBytes, 'number');
    assert.equal(typeof doc.machine.cpus, 'number');
    assert.deepEqual(doc.verdict.unchecked, ['legacy']);
    assert.match(lines.at(-1)!, /^ACCEPTED \(load [\d.]+ → [\d.]+\)$/);

    const bad = writeResults('x', [pairedRow('a', 'ms', [10, 30, 10], [10, 10, 10], 'p', 'lower')], {}, { dir });
    assert.equal(bad.verdict.ok, false);
    assert.equal(process.exitCode, 1);
    assert.match(lines.at(-1)!, /^REJECTED: a: ratio spread 3\.00× .* \(load [\d.]+ → [\d.]+\)$/);
    assert.deepEqual(readdirSync(dir).sort(), ['x.json', 'x.rejected.json']);
    // the good file was not overwritten
    assert.equal((JSON.parse(readFileSync(join(dir, 'x.json'), 'utf8')) as { verdict: { ok: boolean } }).verdict.ok, true);
  } finally {
    process.exitCode = code;
    console.log = log;
    console.error = err;
    console.table = table;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('verdictLine: ACCEPTED, or REJECTED with the first reason and how many more, always with the load', () => {
  assert.equal(verdictLine({ ok: true, rows: [], reasons: [] }, 1.2, 0.9), 'ACCEPTED (load 1.2 → 0.9)');
  assert.equal(verdictLine({ ok: false, rows: [], reasons: ['a: wide'] }, 3, 4), 'REJECTED: a: wide (load 3 → 4)');
  assert.equal(verdictLine({ ok: false, rows: [], reasons: ['a: wide', 'b: wide', 'c: wide'] }, 3, 4), 'REJECTED: a: wide (+2 more) (load 3 → 4)');
});
