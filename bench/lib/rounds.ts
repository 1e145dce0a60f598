/**
 * Figures that hold from run to run (issue 18 §2). A bench's sides (meshd and its peer, or more targets) run
 * interleaved in short rounds — A B, B A, A B … with the first side rotating every round — so a burst of
 * outside load lands on both sides alike. Each round gives one ratio (ours against the peer, measured
 * seconds apart); a row reports the MEDIAN of those ratios with their min–max. When the per-round ratios
 * disagree by more than the row's bound (max/min, default {@link DEFAULT_MAX_SPREAD}), the machine moved
 * the answer more than the figure can claim, and the result is rejected instead of written (results.ts).
 *
 * The pure parts (median, roundRatio, spread, verdict) are small exported functions with table tests
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

/** What a row's verdict needs from it (a BenchRow carries these fields). */
export interface SpreadFields {
  metric: string;
  ratio: number | null;
  /** Rounds measured; undefined for a row made without rounds (legacy `row()`): not checked. */
  rounds?: number;
  roundRatios?: (number | null)[];
  /** Our per-round figures: checked on their own when the row has no ratio (no peer). */
  oursRounds?: (number | null)[];
  maxSpread?: number;
}

export type RowVerdict =
  | { metric: string; status: 'ok'; spread: number; maxSpread: number }
  | { metric: string; status: 'unchecked'; why: string }
  | { metric: string; status: 'rejected'; why: string };

/**
 * A row passes when its per-round ratios (at least two) stay within its bound. A row with rounds but no
 * ratio at all (no peer) is held to the same bound on its own per-round figures: an absolute figure must
 * hold from run to run too. Rows made without rounds, and rows with neither ratios nor two positive figures
 * of their own (zeros, counts), are 'unchecked' — they neither pass nor reject, and the results file lists
 * them so nobody quotes them as checked.
 */
export function rowVerdict(r: SpreadFields, defaultMax = DEFAULT_MAX_SPREAD): RowVerdict {
  if (r.rounds === undefined) return { metric: r.metric, status: 'unchecked', why: 'made without rounds' };
  const ratios = r.roundRatios ?? [];
  const finite = ratios.filter((x): x is number => x != null && Number.isFinite(x));
  const max = r.maxSpread ?? defaultMax;
  if (r.ratio == null && finite.length === 0) {
    const own = (r.oursRounds ?? []).filter((x): x is number => x != null && Number.isFinite(x) && x > 0);
    if (own.length < 2) return { metric: r.metric, status: 'unchecked', why: 'no ratio and fewer than two positive figures of its own' };
    if (own.length < (r.oursRounds ?? []).length) return { metric: r.metric, status: 'rejected', why: `${(r.oursRounds ?? []).length - own.length} of ${(r.oursRounds ?? []).length} round(s) gave no figure` };
    const s = spread(own)!;
    if (s > max) return { metric: r.metric, status: 'rejected', why: `no peer; its own figures spread ${s.toFixed(2)}× (${Math.min(...own)}–${Math.max(...own)}), wider than ${max}×` };
    return { metric: r.metric, status: 'ok', spread: s, maxSpread: max };
  }
  if (finite.length < 2) return { metric: r.metric, status: 'rejected', why: `only ${finite.length} round(s) with a ratio: a single round cannot show its spread` };
  if (finite.length < ratios.length) return { metric: r.metric, status: 'rejected', why: `${ratios.length - finite.length} of ${ratios.length} round(s) gave no ratio` };
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
