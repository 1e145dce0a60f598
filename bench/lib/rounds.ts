/**
 * Figures that hold from run to run (issue 18 §2). A bench's sides (meshd and its peer, or more targets) run
 * interleaved in short rounds — A B, B A, A B … with the first side rotating every round — so a burst of
 * outside load lands on both sides alike. Each round gives one ratio (ours against the peer, measured
 * seconds apart); a row reports the MEDIAN of those ratios with their min–max. When the per-round ratios
 * disagree by more than the row's bound (max/min, default {@link DEFAULT_MAX_SPREAD}), the machine moved
 * the answer more than the figure can claim, and the result is rejected instead of written (results.ts).
 * How "disagree" is judged depends on the row's kind ({@link MetricKind}): a millisecond row is allowed the
 * jitter its floor explains, and must rest on enough samples when it is close to that floor.
 *
 * The pure parts (median, roundRatio, spread, ratioInterval, timeSpread, verdict) are small exported functions with table tests
 * (test/unit/bench/rounds.test.ts); `interleave` is the only one that runs anything.
 */

/**
 * Default bound on a row's ratio spread (largest per-round ratio / smallest). Why 1.5×: the figures the
 * README quotes are read to about ±25 % (0.8× vs 1.0×, "2.5× better"); if two rounds a few seconds apart
 * already disagree by more than 1.5×, the machine (not the code) decided the ratio, and the median of 3–5 such
 * rounds cannot be trusted to that precision. On a quiet 2-core machine the benches here stay within
 * about 1.2×; on a machine at load 8–20 they do not, and are meant to be rejected.
 * A row whose rounds vary by nature (a SIGKILL lands anywhere in a probe cycle) states its own wider bound
 * and why (`spreadWhy`).
 */
export const DEFAULT_MAX_SPREAD = 1.5;

export type Better = 'higher' | 'lower';

/** Median of the finite values (mean of the middle two for an even count); null when there are none. */
export function median(xs: readonly (number | null | undefined)[]): number | null {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * One figure per round from consecutive samples: the median of each group of `per` samples (samples[0..per)
 * is round 0, …), rounded to `digits` decimals. A trailing partial group is dropped (it is not a round).
 */
export function perRound(samples: readonly number[], per: number, digits = 1): number[] {
  if (!Number.isInteger(per) || per < 1) throw new Error(`perRound: per must be a positive integer, got ${per}`);
  const f = 10 ** digits;
  return Array.from({ length: Math.floor(samples.length / per) }, (_, k) => Math.round(median(samples.slice(k * per, (k + 1) * per))! * f) / f);
}

/**
 * How many runs one timed sample should hold so that it takes about `targetMs`, given one run's `estimateMs`
 * (e.g. a warm-up median): ceil(target / estimate), within [1, max]. Why: a run close to the timer's floor
 * (GC, JIT, a wake-up) is a draw; a batch of them is a figure, and its per-run floor is floor / batch.
 */
export function batchSize(estimateMs: number, targetMs: number, max: number): number {
  if (!(estimateMs > 0) || !Number.isFinite(estimateMs)) return max;
  return Math.max(1, Math.min(max, Math.ceil(targetMs / estimateMs)));
}

/**
 * One round's ratio, oriented so that > 1 means meshd is better: ours/peer for higher-is-better metrics,
 * peer/ours for lower-is-better. Null when either side is missing, not finite, or not positive (a zero
 * cannot be divided by, and "0 false deaths vs 0" is no ratio).
 */
export function roundRatio(ours: number | null | undefined, peer: number | null | undefined, better: Better): number | null {
  if (typeof ours !== 'number' || typeof peer !== 'number' || !Number.isFinite(ours) || !Number.isFinite(peer) || ours <= 0 || peer <= 0) return null;
  return better === 'higher' ? ours / peer : peer / ours;
}

/** max/min of the finite positive ratios (≥ 1); null with fewer than two of them. */
export function spread(ratios: readonly (number | null)[]): number | null {
  const v = ratios.filter((x): x is number => x != null && Number.isFinite(x) && x > 0);
  if (v.length < 2) return null;
  return Math.max(...v) / Math.min(...v);
}

/**
 * What kind of figure a row holds; it decides how its spread is judged (issue 18 §2: one bound for every
 * row rejected millisecond rows whose few ms of jitter are a large relative spread).
 * - 'rate': throughput, bytes/s, CPU per query over thousands of queries: figures far above any resolution,
 *   so the plain rule holds — max/min of the per-round ratios ≤ maxSpread.
 * - 'time': a duration or latency. Each per-round figure is known only to ± its `floor` (in the row's unit:
 *   the timer's resolution plus the wake-up jitter of what is timed, stated per bench); see {@link timeSpread}.
 * - 'count': events that are 0 on a good run (false deaths, errors): no ratio, never checked.
 * A row that says nothing gets {@link kindOf} its unit.
 */
export type MetricKind = 'rate' | 'time' | 'count';

/** 'time' for ms/s/µs/us/ns units, 'rate' otherwise. */
export function kindOf(unit: string): MetricKind {
  return /^(ms|s|µs|us|ns)$/.test(unit) ? 'time' : 'rate';
}

/**
 * A 'time' figure within this many floors of its floor is close enough to it that one sample per round is a
 * draw, not a figure: each round must then be the median of at least {@link MIN_SAMPLES_NEAR_FLOOR} samples.
 */
export const NEAR_FLOOR = 10;
export const MIN_SAMPLES_NEAR_FLOOR = 5;

/** What a row's verdict needs from it (a BenchRow carries these fields). */
export interface SpreadFields {
  metric: string;
  unit?: string;
  ratio: number | null;
  better?: Better;
  /** Rounds measured; undefined for a row made without rounds (legacy `row()`): not checked. */
  rounds?: number;
  roundRatios?: (number | null)[];
  /** Our per-round figures: checked on their own when the row has no ratio (no peer). */
  oursRounds?: (number | null)[];
  peerRounds?: (number | null)[];
  maxSpread?: number;
  /** Default: kindOf(unit). */
  kind?: MetricKind;
  /** 'time' rows: ± resolution of one per-round figure, in the row's unit (default 0: the plain rule). */
  floor?: number;
  /** The peer's floor when it differs (0 for a published constant); default `floor`. */
  peerFloor?: number;
  /** Samples behind each per-round figure (default 1). */
  samplesPerRound?: number;
  /**
   * Shown, never checked: why this row is context for another row's figure (e.g. throughput on 2 CPUs is
   * each side's CPU share; the CPU cost per byte next to it is the checked figure). Say why, always.
   */
  informative?: string;
}

export type RowVerdict =
  | { metric: string; status: 'ok'; spread: number; maxSpread: number }
  | { metric: string; status: 'unchecked'; why: string }
  | { metric: string; status: 'unresolved'; why: string }
  | { metric: string; status: 'rejected'; why: string };

/** One round's ratio as an interval, each side known to ± its floor (oriented like roundRatio). */
export function ratioInterval(ours: number, peer: number, better: Better, floor: number, peerFloor = floor): [number, number] {
  const [num, numF, den, denF] = better === 'higher' ? [ours, floor, peer, peerFloor] : [peer, peerFloor, ours, floor];
  const lo = Math.max(num - numF, 0) / (den + denF);
  const hi = den - denF > 0 ? (num + numF) / (den - denF) : Number.POSITIVE_INFINITY;
  return [lo, hi];
}

/**
 * The spread of per-round values each known only as an interval [lo, hi]: how far apart the rounds are
 * beyond what their resolution explains — max(lo) / min(hi), and 1 when the intervals overlap. With zero
 * floors (lo = hi) it is max/min, the plain rule.
 */
export function timeSpread(intervals: readonly [number, number][]): number {
  const maxLo = Math.max(...intervals.map((x) => x[0]));
  const minHi = Math.min(...intervals.map((x) => x[1]));
  return maxLo <= minHi ? 1 : maxLo / minHi;
}

const fmt = (x: number): string => String(Math.round(x * 1000) / 1000);

/**
 * A row passes when its per-round ratios (at least two) stay within its bound, judged by its kind
 * ({@link MetricKind}). A row with rounds but no ratio at all (no peer) is held to the same bound on its own
 * per-round figures: an absolute figure must hold from run to run too. Rows made without rounds, 'count'
 * rows, 'informative' rows (context for a checked row, with the reason), and rows with neither ratios nor two positive figures of their own (zeros) are 'unchecked'; a 'time'
 * row with a figure at or below its floor in some round is 'unresolved' (the machine cannot tell it from
 * zero, so no ratio is claimed). Neither rejects the result; the results file lists both, so nobody quotes
 * them as checked.
 */
export function rowVerdict(r: SpreadFields, defaultMax = DEFAULT_MAX_SPREAD): RowVerdict {
  if (r.rounds === undefined) return { metric: r.metric, status: 'unchecked', why: 'made without rounds' };
  if (r.informative) return { metric: r.metric, status: 'unchecked', why: `informative: ${r.informative}` };
  const kind = r.kind ?? kindOf(r.unit ?? '');
  if (kind === 'count') return { metric: r.metric, status: 'unchecked', why: 'a count (0 on a good run): no ratio to check' };
  // an unbounded figure (a change that never converged) is a failure of the round, never a missing peer
  const unbounded = (r.oursRounds ?? []).filter((x) => x === Number.POSITIVE_INFINITY).length;
  if (unbounded) return { metric: r.metric, status: 'rejected', why: `${unbounded} of ${(r.oursRounds ?? []).length} round(s) unbounded (something never completed)` };
  const ratios = r.roundRatios ?? [];
  const finite = ratios.filter((x): x is number => x != null && Number.isFinite(x));
  const max = r.maxSpread ?? defaultMax;
  const floor = kind === 'time' ? r.floor ?? 0 : 0;
  const peerFloor = kind === 'time' ? r.peerFloor ?? floor : 0;
  const ownOnly = r.ratio == null && finite.length === 0;
  const own = (r.oursRounds ?? []).filter((x): x is number => x != null && Number.isFinite(x) && x > 0);
  if (ownOnly) {
    if (own.length < 2) return { metric: r.metric, status: 'unchecked', why: 'no ratio and fewer than two positive figures of its own' };
    if (own.length < (r.oursRounds ?? []).length) return { metric: r.metric, status: 'rejected', why: `${(r.oursRounds ?? []).length - own.length} of ${(r.oursRounds ?? []).length} round(s) gave no figure` };
  } else {
    if (finite.length < 2) return { metric: r.metric, status: 'rejected', why: `only ${finite.length} round(s) with a ratio: a single round cannot show its spread` };
    if (finite.length < ratios.length) return { metric: r.metric, status: 'rejected', why: `${ratios.length - finite.length} of ${ratios.length} round(s) gave no ratio` };
  }
  const floored = ownOnly || (r.oursRounds?.length === ratios.length && r.peerRounds?.length === ratios.length);
  if (floor > 0 && floored) {
    const peers = (r.peerRounds ?? []).filter((x): x is number => typeof x === 'number');
    const low = [...own.filter((x) => x <= floor), ...(ownOnly || peerFloor === 0 ? [] : peers.filter((x) => x <= peerFloor))];
    if (low.length) return { metric: r.metric, status: 'unresolved', why: `${fmt(Math.min(...low))} ${r.unit ?? ''} is within its floor of ±${floor} ${r.unit ?? ''}: no ratio claimed` };
    const med = median(own)!;
    const samples = r.samplesPerRound ?? 1;
    if (med < NEAR_FLOOR * floor && samples < MIN_SAMPLES_NEAR_FLOOR) {
      return { metric: r.metric, status: 'rejected', why: `${fmt(med)} ${r.unit ?? ''} is within ${NEAR_FLOOR}× its floor (±${floor}) but each round is ${samples} sample(s), fewer than ${MIN_SAMPLES_NEAR_FLOOR}` };
    }
    const iv: [number, number][] = ownOnly
      ? own.map((o) => [o - floor, o + floor])
      : (r.oursRounds ?? []).map((o, k) => ratioInterval(o!, r.peerRounds![k]!, r.better ?? 'lower', floor, peerFloor));
    const s = timeSpread(iv);
    const what = ownOnly ? `no peer; its own figures (${Math.min(...own)}–${Math.max(...own)})` : `ratio (${Math.min(...finite).toFixed(3)}–${Math.max(...finite).toFixed(3)})`;
    if (s > max) return { metric: r.metric, status: 'rejected', why: `${what} spread ${s.toFixed(2)}× beyond the ±${floor} ${r.unit ?? ''} floor, wider than ${max}×` };
    return { metric: r.metric, status: 'ok', spread: s, maxSpread: max };
  }
  if (ownOnly) {
    const s = spread(own)!;
    if (s > max) return { metric: r.metric, status: 'rejected', why: `no peer; its own figures spread ${s.toFixed(2)}× (${Math.min(...own)}–${Math.max(...own)}), wider than ${max}×` };
    return { metric: r.metric, status: 'ok', spread: s, maxSpread: max };
  }
  const s = spread(finite)!;
  if (s > max) return { metric: r.metric, status: 'rejected', why: `ratio spread ${s.toFixed(2)}× (${Math.min(...finite).toFixed(3)}–${Math.max(...finite).toFixed(3)}) is wider than ${max}×` };
  return { metric: r.metric, status: 'ok', spread: s, maxSpread: max };
}

export interface Verdict {
  ok: boolean;
  rows: RowVerdict[];
  /** One line per rejected row. */
  reasons: string[];
}

/** The metrics of the rows with `status` (for the results file's verdict). */
export function withStatus(v: Verdict, status: RowVerdict['status']): string[] {
  return v.rows.filter((x) => x.status === status).map((x) => x.metric);
}

/** The whole result: ok unless some row is rejected. */
export function verdict(rows: readonly SpreadFields[], defaultMax = DEFAULT_MAX_SPREAD): Verdict {
  const vs = rows.map((r) => rowVerdict(r, defaultMax));
  const reasons = vs.flatMap((v) => (v.status === 'rejected' ? [`${v.metric}: ${v.why}`] : []));
  return { ok: reasons.length === 0, rows: vs, reasons };
}

/**
 * The order of `n` sides in round `round` (0-based): the first side rotates, so with two sides rounds go
 * A B, B A, A B … and with three A B C, B C A, C A B …
 */
export function roundOrder(n: number, round: number): number[] {
  return Array.from({ length: n }, (_, i) => (i + round) % n);
}

export interface Side<T> {
  name: string;
  /** One measurement of this side (`round` is 0-based). */
  run(round: number): Promise<T>;
}

/**
 * Runs `rounds` rounds; each round runs every side once, in {@link roundOrder}. Returns each side's
 * samples in round order (samples[name][round]). `between` runs after every measurement (e.g. a pause
 * so one side's tail does not land on the next); `onRound` sees a finished round (for progress lines).
 */
export async function interleave<T>(
  rounds: number,
  sides: readonly Side<T>[],
  hooks: { between?: () => Promise<void>; onRound?: (round: number, got: Record<string, T>) => void } = {},
): Promise<Record<string, T[]>> {
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`interleave: rounds must be a positive integer, got ${rounds}`);
  const out: Record<string, T[]> = Object.fromEntries(sides.map((s) => [s.name, [] as T[]]));
  for (let r = 0; r < rounds; r++) {
    const got: Record<string, T> = {};
    for (const i of roundOrder(sides.length, r)) {
      const s = sides[i]!;
      const v = await s.run(r);
      out[s.name]!.push(v);
      got[s.name] = v;
      if (hooks.between) await hooks.between();
    }
    hooks.onRound?.(r, got);
  }
  return out;
}
