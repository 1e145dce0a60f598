/**
 * Shared shape of bench/results/NAME.json (ARCHITECTURE §3): each bench runs side by side against a real
 * peer in one run, prints a table and writes its figures and ratios — but only figures that hold from run
 * to run (issue 18 §2, method in rounds.ts): rows made with `pairedRow` carry every round's ratio, and a
 * result with a row whose ratio spread is wider than its bound is written to NAME.rejected.json
 * (gitignored) instead of over the committed NAME.json, with the reason printed and exit code 1.
 * Every file records the machine and its 1-min load average and free memory at start and end.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, freemem, hostname, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_MAX_SPREAD, MIN_SAMPLES_NEAR_FLOOR, NEAR_FLOOR, median, roundRatio, spread, verdict, withStatus, type Better, type MetricKind, type Verdict } from './rounds.js';

export interface BenchRow {
  /** What was measured, e.g. "qps, 1 name". */
  metric: string;
  unit: string;
  /** Our figure (with rounds: the median of our per-round figures). */
  ours: number;
  /** The real peer's figure in the same run (null when the peer could not run; say why in `note`). */
  peer: number | null;
  peerName: string;
  /** > 1 = meshd better. With rounds: the MEDIAN of the per-round ratios (not the ratio of the medians). */
  ratio: number | null;
  better: Better;
  note?: string;
  /** Rounds measured (absent: a row made without rounds — not checked for spread). */
  rounds?: number;
  ratioMin?: number | null;
  ratioMax?: number | null;
  /** ratioMax / ratioMin. */
  spread?: number | null;
  /** This row's bound on `spread` (absent: DEFAULT_MAX_SPREAD) and why it differs from the default. */
  maxSpread?: number;
  spreadWhy?: string;
  /** Shown, never checked: context for a checked row, with the reason (rounds.ts SpreadFields.informative). */
  informative?: string;
  roundRatios?: (number | null)[];
  oursRounds?: (number | null)[];
  peerRounds?: (number | null)[];
  /** How the spread is judged (rounds.ts MetricKind; absent: from the unit). */
  kind?: MetricKind;
  /** 'time' rows: ± resolution of one per-round figure in `unit`, and the peer's when it differs. */
  floor?: number;
  peerFloor?: number;
  /** Samples behind each per-round figure (a round's figure is their median). */
  samplesPerRound?: number;
  /** 'pooled': ours/peer/ratio are over every sample of every round (e.g. a p99 of 200), not the per-round median. */
  headline?: 'pooled';
}

const r3 = (x: number | null): number | null => (x == null ? null : Math.round(x * 1000) / 1000);
const r2 = (x: number): number => Math.round(x * 100) / 100;

/** A row from one figure per side (no rounds): its ratio is shown but never checked for spread. */
export function row(metric: string, unit: string, ours: number, peer: number | null, peerName: string, better: Better, note?: string): BenchRow {
  const ratio = peer == null || peer === 0 || ours === 0 ? null : better === 'higher' ? ours / peer : peer / ours;
  return { metric, unit, ours, peer, peerName, ratio: r3(ratio), better, ...(note ? { note } : {}) };
}

export interface PairedOptions {
  note?: string;
  /** Bound on max/min of the per-round ratios for this row; say why in `spreadWhy` when not the default. */
  maxSpread?: number;
  spreadWhy?: string;
  /** Shown, never checked; the reason (rounds.ts SpreadFields.informative). */
  informative?: string;
  kind?: MetricKind;
  /** 'time' rows: ± resolution of one per-round figure, in the row's unit (say where it comes from in the bench). */
  floor?: number;
  /** 0 for a peer that is a published constant (it has no jitter); default `floor`. */
  peerFloor?: number;
  samplesPerRound?: number;
  /**
   * Figures over every sample of every round (a p99 over 200 changes is not the median of four p99s of 50):
   * they become the row's ours/peer/ratio; the rounds still give min–max and the spread check.
   */
  pooled?: { ours: number; peer: number | null };
}

/**
 * A row from per-round samples: ours[k] and peer[k] were measured in the same round k (interleave()). The
 * row's ours/peer are the medians, its ratio the median of the per-round ratios, with min–max and spread.
 * `peer` null (or all null) when the peer did not run: the row then has no ratio and is not checked.
 * A peer that is a constant (a published figure) is passed as the same value every round.
 */
export function pairedRow(metric: string, unit: string, ours: readonly (number | null)[], peer: readonly (number | null)[] | null, peerName: string, better: Better, o: PairedOptions = {}): BenchRow {
  const p = peer ?? [];
  const ratios = ours.map((x, k) => r3(roundRatio(x, p[k], better)));
  const finite = ratios.filter((x): x is number => x != null);
  const s = spread(finite);
  const pm = o.pooled ? o.pooled.peer : median(p);
  return {
    metric, unit,
    ours: r2((o.pooled ? o.pooled.ours : median(ours)) ?? Number.NaN),
    peer: pm == null ? null : r2(pm),
    peerName,
    ratio: o.pooled ? r3(roundRatio(o.pooled.ours, o.pooled.peer, better)) : r3(median(finite)),
    better,
    ...(o.note ? { note: o.note } : {}),
    rounds: ours.length,
    ratioMin: finite.length ? Math.min(...finite) : null,
    ratioMax: finite.length ? Math.max(...finite) : null,
    spread: s == null ? null : r3(s),
    ...(o.maxSpread !== undefined ? { maxSpread: o.maxSpread } : {}),
    ...(o.spreadWhy ? { spreadWhy: o.spreadWhy } : {}),
    ...(o.informative ? { informative: o.informative } : {}),
    ...(o.kind ? { kind: o.kind } : {}),
    ...(o.floor !== undefined ? { floor: o.floor } : {}),
    ...(o.peerFloor !== undefined ? { peerFloor: o.peerFloor } : {}),
    ...(o.samplesPerRound !== undefined ? { samplesPerRound: o.samplesPerRound } : {}),
    ...(o.pooled ? { headline: 'pooled' as const } : {}),
    roundRatios: ratios,
    oursRounds: [...ours],
    peerRounds: [...p],
  };
}

export interface MachineSnapshot {
  at: string;
  /** 1-minute load average. */
  loadavg1: number;
  freeMemBytes: number;
}

export function snapshot(): MachineSnapshot {
  return { at: new Date().toISOString(), loadavg1: r2(loadavg()[0]!), freeMemBytes: freemem() };
}

export function machine(): Record<string, unknown> {
  return { host: hostname(), cpus: cpus().length, model: cpus()[0]?.model, memBytes: totalmem(), kernel: release(), node: process.version };
}

/** Taken when this module is first imported (= the bench's start) for benches that do not pass their own. */
const IMPORTED_AT: MachineSnapshot = snapshot();

export interface WriteOptions {
  /** The machine at the bench's start (default: when results.ts was imported). */
  start?: MachineSnapshot;
  /** Default bound for rows without their own `maxSpread`. */
  maxSpread?: number;
  /** Directory of the results (tests); default bench/results of the repository. */
  dir?: string;
}

export interface Written {
  file: string;
  verdict: Verdict;
}

/**
 * Prints the table, checks every row (rounds.ts `verdict`) and writes bench/results/NAME.json — or, when
 * a row is rejected, NAME.rejected.json, prints why and sets process.exitCode = 1. The committed NAME.json
 * is then left as it was.
 */
export function writeResults(name: string, rows: BenchRow[], extra: Record<string, unknown> = {}, o: WriteOptions = {}): Written {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const dir = o.dir ?? join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const maxSpread = o.maxSpread ?? DEFAULT_MAX_SPREAD;
  const v = verdict(rows, maxSpread);
  const file = join(dir, v.ok ? `${name}.json` : `${name}.rejected.json`);
  const doc = {
    name,
    date: new Date().toISOString(),
    machine: machine(),
    load: { start: o.start ?? IMPORTED_AT, end: snapshot() },
    note: 'ratio > 1 means meshd is better than the peer on that metric; with rounds, ratio = median of the per-round ratios, ratioMin–ratioMax their range',
    method: `sides interleaved in rounds (first side rotating); a row is rejected when its per-round ratios spread (max/min) wider than its maxSpread (default ${maxSpread}×); a 'time' row's figures count as ± its floor (spread beyond what the floor explains), need ≥ ${MIN_SAMPLES_NEAR_FLOOR} samples per round within ${NEAR_FLOOR}× the floor, and are 'unresolved' (no ratio claimed, not rejected) at or below it; bench/lib/rounds.ts`,
    verdict: { ok: v.ok, rejected: v.reasons, unchecked: withStatus(v, 'unchecked'), unresolved: withStatus(v, 'unresolved') },
    rows,
    ...extra,
  };
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  console.table(rows.map((r) => ({ metric: r.metric, unit: r.unit, ours: r.ours, peer: r.peer, peerName: r.peerName, ratio: r.ratio, 'min–max': r.rounds === undefined ? '' : `${r.ratioMin ?? '-'}–${r.ratioMax ?? '-'}`, rounds: r.rounds ?? '' })));
  console.log(`load average (1 min) ${doc.load.start.loadavg1} at start, ${doc.load.end.loadavg1} at end; free memory ${Math.round(doc.load.start.freeMemBytes / 2 ** 20)} → ${Math.round(doc.load.end.freeMemBytes / 2 ** 20)} MiB`);
  if (v.ok) {
    console.log(`wrote ${file}`);
  } else {
    console.error(`NOT written over ${join(dir, `${name}.json`)}: the figures do not hold from round to round:`);
    for (const r of v.reasons) console.error(`  - ${r}`);
    console.error(`wrote ${file} instead (rerun on a quieter machine; load at start ${doc.load.start.loadavg1}, at end ${doc.load.end.loadavg1})`);
    process.exitCode = 1;
  }
  console.log(verdictLine(v, doc.load.start.loadavg1, doc.load.end.loadavg1));
  return { file, verdict: v };
}

/**
 * The one line a run ends with (the integrator greps it): "ACCEPTED" or "REJECTED: <first reason> (+N more)",
 * with the load at start and end — an accepted run at load 20 is not a quiet-machine figure.
 */
export function verdictLine(v: Verdict, loadStart: number, loadEnd: number): string {
  const load = `load ${loadStart} → ${loadEnd}`;
  if (v.ok) return `ACCEPTED (${load})`;
  const more = v.reasons.length > 1 ? ` (+${v.reasons.length - 1} more)` : '';
  return `REJECTED: ${v.reasons[0]}${more} (${load})`;
}

/** The committed result's top-level fields (e.g. to keep the previous run's figures alongside); null when absent. */
export function readCommitted(name: string): Record<string, unknown> | null {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  try {
    return JSON.parse(readFileSync(join(root, 'bench', 'results', `${name}.json`), 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}
