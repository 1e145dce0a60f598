/**
 * The sync state machine of one sandbox (kube-proxy's proxier loop, minus the timers): remembers
 * the compiled state last applied SUCCESSFULLY and plans the next transaction against it.
 *
 * - first apply, after any failure, or on request → full resync;
 * - otherwise → incremental (only changed frontends), or noop when nothing changed.
 *
 * One implementation per kernel backend behind this interface (nft-syncer.ts: the whole table in
 * one `nft -f`; ipvs-syncer.ts: the difference from the kernel's read-back, never `-C`), so no
 * code branches on the backend's kind. The adapter calls `plan()`, runs the scripts, then
 * `committed(plan)` or `failed()`. Pure.
 */
import type { StaleTarget } from './ct-flush.js';
import type { Compiled, LbDesired } from './model.js';

export type DataplaneKind = 'nftables' | 'ipvs';

/** What every backend's plan carries; each backend adds its scripts. */
export interface PlanBase {
  mode: 'full' | 'incremental' | 'noop';
  /** Frontends touched (all of them for a full sync). */
  changed: number;
  /** Total frontends after this plan. */
  frontends: number;
  next: Compiled;
  /** The desired state planned (kept on commit: the next plan's fast path compares objects). */
  desired: LbDesired;
  /**
   * Backends this plan takes out of frontends, against the state last committed (ct-flush.ts):
   * their conntrack entries are deleted once it is applied. Empty when nothing was committed
   * before in this namespace (first apply, agent restart: what the kernel held is not known).
   */
  stale: StaleTarget[];
}

/**
 * One namespace's sync state. `V`: what a full resync of this backend diffs against (IPVS: the
 * kernel read back; nftables replaces its table whole and needs nothing).
 */
export interface LbSyncer<P extends PlanBase = PlanBase, V = never> {
  readonly kind: DataplaneKind;
  /** True when the next plan is a full resync (an IPVS adapter then reads the kernel first). */
  fullNext(): boolean;
  /** Validates (MESHD_BAD_ARGUMENT) and plans; does not change state. */
  plan(desired: LbDesired, kernel?: V): P;
  committed(plan: P): void;
  /** Any failure: forget what we think the kernel holds; the next plan is a full resync. */
  failed(): void;
  /** Periodic safety net / drift repair (kube-proxy resyncs fully every hour): next plan is full. */
  requestFullResync(): void;
  lastApplied(): Compiled | null;
}
