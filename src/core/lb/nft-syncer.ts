/**
 * The nftables backend's syncer (see syncer.ts): a full resync replaces the LB table in one
 * transaction; an incremental plan touches only changed frontends, sized against the table state
 * last committed (nft-state.ts), and falls back to full when a sized set would overflow. The fast
 * path (fastpath.ts) compares service objects by identity with the last desired state. Pure.
 */
import { diffCompiled, diffSize, isEmptyDiff } from './diff.js';
import { fastPlan } from './fastpath.js';
import { compile, type Compiled, type CompileMemo, type LbDesired } from './model.js';
import { applyNftDelta, type NftDelta, type NftState } from './nft-state.js';
import { planNftFull, planNftIncremental } from './nftables-render.js';
import type { LbSyncer, PlanBase } from './syncer.js';

export interface NftPlan extends PlanBase {
  kind: 'nftables';
  /** `nft -f -` script for the LB table (empty for noop). */
  nft: string;
  /** The table state after a full plan, or the change to it of an incremental one. */
  nftState?: NftState;
  nftDelta?: NftDelta;
}

export class NftSyncer implements LbSyncer<NftPlan> {
  readonly kind = 'nftables' as const;
  private last: Compiled | null = null;
  private lastDesired: LbDesired | null = null;
  /** Frontend ids, slot chains and set sizes in the kernel table (nft-state.ts). */
  private nftState: NftState | null = null;
  /** Compiled frontends per service object: unchanged objects are not re-validated or recompiled. */
  private readonly memo: CompileMemo = new WeakMap();

  fullNext(): boolean {
    return this.last === null || this.nftState === null;
  }

  plan(desired: LbDesired): NftPlan {
    const fast = this.last !== null && this.lastDesired !== null ? fastPlan(this.lastDesired, this.last, desired, this.memo) : null;
    const next = fast ? fast.compiled : compile(desired, this.memo);
    const base = { kind: this.kind, next, frontends: next.size, desired };
    const full = (): NftPlan => {
      const p = planNftFull(next);
      return { ...base, mode: 'full', nft: p.script, changed: next.size, nftState: p.state };
    };
    if (this.last === null || this.nftState === null) return full();
    const d = fast ? fast.diff : diffCompiled(this.last, next);
    if (isEmptyDiff(d)) return { ...base, mode: 'noop', nft: '', changed: 0 };
    // a sized set would overflow → full sync (it sizes the sets anew)
    const p = planNftIncremental(this.last, next, this.nftState, d);
    return p ? { ...base, mode: 'incremental', nft: p.script, changed: diffSize(d), nftDelta: p.delta } : full();
  }

  committed(plan: NftPlan): void {
    this.last = plan.next;
    this.lastDesired = plan.desired;
    if (plan.nftState) this.nftState = plan.nftState;
    else if (plan.nftDelta && this.nftState) applyNftDelta(this.nftState, plan.nftDelta);
  }

  failed(): void {
    this.last = null;
    this.nftState = null;
  }

  requestFullResync(): void {
    this.failed();
  }

  lastApplied(): Compiled | null {
    return this.last;
  }
}
