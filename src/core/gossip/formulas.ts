/**
 * The gossip formulas, as small pure functions (memberlist util.go / suspicion.go / awareness.go).
 * All times are milliseconds; member counts include the local node.
 */

/** How many times one broadcast is transmitted: mult × ⌈log10(n+1)⌉ (memberlist retransmitLimit). n ≤ 0 → 0. */
export function retransmitLimit(mult: number, n: number): number {
  if (n <= 0) return 0;
  return mult * Math.ceil(Math.log10(n + 1));
}

/**
 * Minimum suspicion timeout: mult × max(1, log10(max(1, n))) × interval (memberlist suspicionTimeout),
 * floored to whole ms. Grows slowly with the cluster so the news of a suspicion can reach the suspect.
 */
export function suspicionTimeout(mult: number, n: number, intervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(mult * nodeScale * intervalMs);
}

/**
 * Lifeguard's dynamic suspicion timeout: starts at `maxMs` and decays logarithmically towards `minMs`
 * as independent confirmations n arrive, reaching it at k confirmations (memberlist suspicion.remainingSuspicionTime).
 * Returns the time left after `elapsedMs` (may be ≤ 0: expired). k < 1 → minMs from the start.
 */
export function remainingSuspicionTime(n: number, k: number, elapsedMs: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs - elapsedMs;
  const frac = Math.log(n + 1) / Math.log(k + 1);
  const raw = maxMs - frac * (maxMs - minMs);
  const timeout = Math.max(minMs, Math.floor(raw));
  return timeout - elapsedMs;
}

/**
 * Local health awareness (Lifeguard): a timeout scaled by (score + 1), score clamped to [0, max-1]
 * (memberlist awareness.ScaleTimeout). A node that misses acks/nacks is probably the slow one, so it waits longer
 * before accusing others.
 */
export function scaleByHealth(timeoutMs: number, score: number, maxMultiplier: number): number {
  const s = clampHealth(score, maxMultiplier);
  return timeoutMs * (s + 1);
}

/** Clamps a health score into [0, max-1] (memberlist awareness.ApplyDelta). */
export function clampHealth(score: number, maxMultiplier: number): number {
  return Math.min(Math.max(0, score), Math.max(0, maxMultiplier - 1));
}

/** Members up to which push-pull runs at its base interval (memberlist pushPullScaleThreshold). */
export const PUSH_PULL_SCALE_THRESHOLD = 32;

/**
 * Push-pull interval scaled with cluster size so total TCP load stays bounded: interval below 32 members,
 * then × (⌈log2 n − log2 32⌉ + 1) (memberlist pushPullScale).
 */
export function pushPullScale(intervalMs: number, n: number): number {
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return intervalMs;
  const multiplier = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return multiplier * intervalMs;
}

/**
 * Confirmations a suspicion expects before it reaches its minimum timeout (memberlist: SuspicionMult − 2,
 * or 0 when the cluster is too small to provide that many independent suspecters).
 */
export function expectedConfirmations(suspicionMult: number, n: number): number {
  const k = suspicionMult - 2;
  return n - 2 < k ? 0 : Math.max(0, k);
}

/**
 * Upper bound on the time from a crash to every member declaring it dead, for tests and docs:
 * the crashed member is probed within one (round-robin) cycle by someone, the probe ends after one interval,
 * then the suspicion runs at most its max timeout, and the dead news spreads within a few gossip rounds.
 */
export function detectionBoundMs(probeIntervalMs: number, suspicionMaxMs: number, gossipIntervalMs: number, n: number, awarenessMax = 1): number {
  const disseminate = Math.ceil(Math.log10(n + 1)) * 4 * gossipIntervalMs;
  return probeIntervalMs * awarenessMax * 3 + suspicionMaxMs + disseminate;
}

/**
 * How long the news that a member joined a network takes to reach every member, for the join catch-up
 * (tables.ts): the joiner sends its news in every gossip packet until it has used its retransmitLimit
 * transmits (≥ 1 round of gossipNodes packets each), and each member that hears it relays it as many times;
 * two full budgets of gossip rounds cover the joiner's transmits and one generation of relays.
 * 2 × retransmits × gossipInterval: 800 ms with `local` at ≤ 9 members, 3.2 s with `lan` at 10–99.
 */
export function joinSpreadMs(retransmits: number, gossipIntervalMs: number): number {
  return 2 * Math.max(1, retransmits) * gossipIntervalMs;
}
