/**
 * Balancing choices of a frontend (issue 19 §3), shared by both dataplanes: the algorithm, locality
 * tiers and weights. `model.ts` applies them when it compiles a service into frontends; the
 * renderers only see the result (`Frontend.algorithm`, `weights`, `slots`). Pure formulas with
 * table tests.
 */

/** What locality and weights read of a backend (model.ts `Backend`; structural, so this file imports nothing). */
interface Placed {
  state: 'active' | 'draining';
  local?: boolean | undefined;
  sameZone?: boolean | undefined;
}

/**
 * How a frontend picks a backend for a NEW connection (moby#23813). `random` (the default, what
 * meshd always did): nft `numgen random`, IPVS `rr` (IPVS has no random scheduler; rr is the
 * nearest stateless spread). `round-robin`: nft `numgen inc`, IPVS `rr`. `source-hash` (sticky by
 * client address): nft `jhash ip saddr` with a fixed seed (the same client lands on the same slot
 * on every node), IPVS `sh`. With weights, IPVS uses `wrr` for random / round-robin.
 */
export type LbAlgorithm = 'random' | 'round-robin' | 'source-hash';
export const LB_ALGORITHMS: readonly LbAlgorithm[] = ['random', 'round-robin', 'source-hash'];
/**
 * Locality (moby#30850): `none` (default) balances over every active task; `node` prefers tasks on
 * this node, then tasks in this node's zone (`node.labels.zone`), then any; `zone` prefers tasks in
 * this node's zone (this node's included), then any. The preferred tier is chosen among ACTIVE
 * backends only, so a drained or unhealthy local task spills over at once.
 */
export type LbLocality = 'none' | 'node' | 'zone';
export const LB_LOCALITIES: readonly LbLocality[] = ['none', 'node', 'zone'];
/** Largest backend weight (canary splits are expressed as integer weights). */
export const MAX_WEIGHT = 10000;
/** A weighted nftables frontend gets at most this many slots (finer than 1 % is not needed). */
export const MAX_WEIGHTED_SLOTS = 100;

/** Balancing options of a service or publish (absent fields = defaults: random, no locality). */
export interface LbOptions {
  algorithm?: LbAlgorithm;
  locality?: LbLocality;
}

/** 0 = this node, 1 = this node's zone, 2 = elsewhere. */
export function tier(b: Placed): number {
  return b.local === true ? 0 : b.sameZone === true ? 1 : 2;
}

/**
 * The highest locality tier a new connection may go to: the best tier holding an active backend
 * (passing `filter`), or 2 (anything) when locality is off or no preferred tier has one.
 */
export function maxTier<B extends Placed>(backends: readonly B[], filter: (b: B) => boolean, locality: LbLocality | undefined): number {
  if (locality === undefined || locality === 'none') return 2;
  let best = 2;
  for (const b of backends) if (b.state === 'active' && filter(b)) best = Math.min(best, tier(b));
  return locality === 'zone' ? (best <= 1 ? 1 : 2) : best;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Weights of `targets` reduced by their common divisor; null when all are equal (unweighted). Pure
 * formula, table-tested: [90, 10] → [9, 1]; [30, 30] → null.
 */
export function reduceWeights(ws: readonly number[]): number[] | null {
  if (ws.length === 0 || ws.every((w) => w === ws[0])) return null;
  const g = ws.reduce((x, y) => gcd(x, y));
  return ws.map((w) => w / g);
}

/**
 * Slot counts for weighted nftables selection: proportional to `ws`, every target at least one
 * slot, the total scaled down to about MAX_WEIGHTED_SLOTS when larger (then reduced again).
 * [9, 1] → [9, 1]; [999, 1] → [99, 1]; [1, 1, 2] → [1, 1, 2].
 */
export function slotCounts(ws: readonly number[]): number[] {
  const sum = ws.reduce((x, y) => x + y, 0);
  if (sum <= MAX_WEIGHTED_SLOTS) return [...ws];
  const scaled = ws.map((w) => Math.max(1, Math.round((w * MAX_WEIGHTED_SLOTS) / sum)));
  return reduceWeights(scaled) ?? scaled.map(() => 1);
}

/** Weights and slot list of a frontend's targets (both absent when unweighted). */
export function weighting<T extends { ip: string }>(targets: readonly T[], w: Map<string, number> | null): { weights?: number[]; slots?: T[] } {
  if (!w) return {};
  const ws = reduceWeights(targets.map((t) => w.get(t.ip) ?? 1));
  if (!ws) return {};
  const counts = slotCounts(ws);
  const slots: T[] = [];
  targets.forEach((t, i) => {
    for (let k = 0; k < counts[i]!; k++) slots.push(t);
  });
  return { weights: ws, slots };
}

/** The frontend's `algorithm` field: absent for the default, so default renders stay as they were. */
export function algorithmOf(lb: LbOptions | undefined): { algorithm?: LbAlgorithm } {
  return lb?.algorithm && lb.algorithm !== 'random' ? { algorithm: lb.algorithm } : {};
}

