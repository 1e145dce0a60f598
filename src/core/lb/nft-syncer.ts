/**
 * The nftables backend's syncer (see syncer.ts): a full resync replaces the LB table in one
 * transaction; an incremental plan touches only changed frontends, sized against the table state
 * last committed (nft-state.ts), and falls back to full when a sized set would overflow. Two fast
 * paths: a `DeltaDesired` derived from the state last committed is planned from its changes alone
 * (delta-plan.ts: O(change), the committed map is patched in place on commit); any other desired
 * state is compared by object identity with the last one (fastpath.ts). Pure.
 */
import { staleTargets, type StaleTarget } from './ct-flush.js';
import { deltaFrom } from './desired-delta.js';
import { deltaPlan, PatchedCompiled, serviceIdCounts } from './delta-plan.js';
import { diffCompiled, diffSize, isEmptyDiff } from './diff.js';
import { fastPlan } from './fastpath.js';
import { compile, type Compiled, type CompileMemo, type Frontend, type LbDesired } from './model.js';
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
  /** A delta plan's service id count changes (applied on commit with its patch). */
  idDelta?: Map<string, number>;
}

export class NftSyncer implements LbSyncer<NftPlan> {
  readonly kind = 'nftables' as const;
  /** Owned by this syncer: a committed delta plan's patch is applied to it in place. */
  private last: Map<string, Frontend> | null = null;
  private lastDesired: LbDesired | null = null;
  /** Service id → count in `lastDesired` (delta plans refuse duplicates); built on first need. */
  private ids: Map<string, number> | null = null;
  /** Frontend ids, slot chains and set sizes in the kernel table (nft-state.ts). */
  private nftState: NftState | null = null;
  /** Compiled frontends per service object: unchanged objects are not re-validated or recompiled. */
  private readonly memo: CompileMemo = new WeakMap();
  /**
   * The state last committed, kept across `failed()` for stale-backend detection only: a failed
   * `nft -f` is atomic (the kernel still holds it), and a backend removed while an apply failed
   * must still have its conntrack entries deleted by the full resync that applies the removal.
   */
  private flushBase: Compiled | null = null;

  fullNext(): boolean {
    return this.last === null || this.nftState === null;
  }

  plan(desired: LbDesired): NftPlan {
    if (this.last !== null && this.nftState !== null) {
      if (desired === this.lastDesired) return { kind: this.kind, next: this.last, frontends: this.last.size, desired, mode: 'noop', nft: '', changed: 0, stale: [] };
      const ch = deltaFrom(this.lastDesired, desired);
      if (ch) return this.planDelta(desired, ch);
    }
    const fast = this.last !== null && this.lastDesired !== null ? fastPlan(this.lastDesired, this.last, desired, this.memo) : null;
    const next = fast ? fast.compiled : compile(desired, this.memo);
    const base = { kind: this.kind, next, frontends: next.size, desired };
    const full = (stale: StaleTarget[]): NftPlan => {
      const p = planNftFull(next);
      return { ...base, mode: 'full', nft: p.script, changed: next.size, nftState: p.state, stale };
    };
    if (this.last === null || this.nftState === null) {
      // O(frontends) like the full render itself
      return full(this.flushBase ? staleTargets(diffCompiled(this.flushBase, next)) : []);
    }
    const d = fast ? fast.diff : diffCompiled(this.last, next);
    if (isEmptyDiff(d)) return { ...base, mode: 'noop', nft: '', changed: 0, stale: [] };
    // a sized set would overflow → full sync (it sizes the sets anew)
    const p = planNftIncremental(this.last, next, this.nftState, d);
    return p ? { ...base, mode: 'incremental', nft: p.script, changed: diffSize(d), nftDelta: p.delta, stale: staleTargets(d) } : full(staleTargets(d));
  }

  /** O(change): the committed state plus the changes, sized and rendered incrementally when it fits. */
  private planDelta(desired: LbDesired, ch: NonNullable<ReturnType<typeof deltaFrom>>): NftPlan {
    const last = this.last!;
    this.ids ??= serviceIdCounts(this.lastDesired!.services);
    const dp = deltaPlan(last, ch, this.memo, this.ids);
    const base = { kind: this.kind, next: dp.compiled, frontends: dp.compiled.size, desired, idDelta: dp.idDelta, stale: staleTargets(dp.diff) };
    if (isEmptyDiff(dp.diff)) return { ...base, mode: 'noop', nft: '', changed: 0 };
    const p = planNftIncremental(last, dp.compiled, this.nftState!, dp.diff);
    if (p) return { ...base, mode: 'incremental', nft: p.script, changed: diffSize(dp.diff), nftDelta: p.delta };
    const f = planNftFull(dp.compiled);
    return { ...base, mode: 'full', nft: f.script, changed: dp.compiled.size, nftState: f.state };
  }

  committed(plan: NftPlan): void {
    const n = plan.next;
    if (n instanceof PatchedCompiled && n.base === this.last && this.last !== null) {
      // patch in place: the plan's view reads the same before and after
      for (const [k, f] of n.patch) f ? this.last.set(k, f) : this.last.delete(k);
      if (this.ids && plan.idDelta) {
        for (const [id, d] of plan.idDelta) {
          const c = (this.ids.get(id) ?? 0) + d;
          c > 0 ? this.ids.set(id, c) : this.ids.delete(id);
        }
      }
    } else if (n !== this.last) {
      this.last = n instanceof Map ? (n as Map<string, Frontend>) : new Map(n);
      this.ids = null;
    }
    this.lastDesired = plan.desired;
    this.flushBase = null;
    if (plan.nftState) this.nftState = plan.nftState;
    else if (plan.nftDelta && this.nftState) applyNftDelta(this.nftState, plan.nftDelta);
  }

  failed(): void {
    if (this.last !== null) this.flushBase = this.last;
    this.last = null;
    this.nftState = null;
    this.ids = null;
  }

  requestFullResync(): void {
    this.failed();
  }

  lastApplied(): Compiled | null {
    return this.last;
  }
}
