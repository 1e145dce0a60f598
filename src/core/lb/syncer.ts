/**
 * The sync state machine of one sandbox (kube-proxy's proxier loop, minus the timers): remembers
 * the compiled state last applied SUCCESSFULLY and plans the next transaction against it.
 *
 * - first apply, after any failure, or on request → full resync (nftables: the whole table in one
 *   transaction; IPVS: the difference from the kernel's read-back, never `-C` — see ipvs-render.ts);
 * - otherwise → incremental (only changed frontends), or noop when nothing changed.
 *
 * The adapter calls `plan()`, runs the scripts, then `committed(plan)` or `failed()`. Pure.
 */
import { diffCompiled, diffSize, isEmptyDiff } from './diff.js';
import { fastPlan } from './fastpath.js';
import { renderIpvsFull, renderIpvsIncremental, type MarkTable } from './ipvs-render.js';
import type { IpvsKernelView } from './ipvs-save.js';
import { compile, type Compiled, type CompileMemo, type LbDesired } from './model.js';
import { applyNftDelta, type NftDelta, type NftState } from './nft-state.js';
import { planNftFull, planNftIncremental } from './nftables-render.js';

export type DataplaneKind = 'nftables' | 'ipvs';

export interface SyncPlan {
  kind: DataplaneKind;
  mode: 'full' | 'incremental' | 'noop';
  /** nftables script (`nft -f -`): the LB table for nftables, the mark table for ipvs. */
  nft: string;
  /** ipvsadm-restore input (ipvs only). */
  ipvs: string;
  /** `ip -batch -force` script for VIP addresses on lo (ipvs only). */
  addrs: string;
  /** Frontends touched (all of them for a full sync). */
  changed: number;
  /** Total frontends after this plan. */
  frontends: number;
  next: Compiled;
  marks: MarkTable;
  /** The desired state planned (kept on commit: the next plan's fast path compares objects). */
  desired: LbDesired;
  /** nftables: the table state after a full plan, or the change to it of an incremental one. */
  nftState?: NftState;
  nftDelta?: NftDelta;
}

export class LbSyncer {
  private last: Compiled | null = null;
  private lastDesired: LbDesired | null = null;
  private marks: MarkTable = new Map();
  /** nftables: frontend ids, slot chains and set sizes in the kernel table (nft-state.ts). */
  private nftState: NftState | null = null;
  /** Compiled frontends per service object: unchanged objects are not re-validated or recompiled. */
  private readonly memo: CompileMemo = new WeakMap();

  constructor(readonly kind: DataplaneKind) {}

  /**
   * True when the next plan is a full resync: an IPVS adapter then reads the kernel first and passes
   * it to `plan` (the resync is a diff against it).
   */
  fullNext(): boolean {
    return this.last === null || (this.kind === 'nftables' && this.nftState === null);
  }

  /**
   * Validates (MESHD_BAD_ARGUMENT) and plans; does not change state. `ipvsKernel`: the kernel's
   * IPVS state for a full IPVS resync (absent = an empty namespace).
   */
  plan(desired: LbDesired, ipvsKernel?: IpvsKernelView): SyncPlan {
    const fast = this.last !== null && this.lastDesired !== null && this.kind === 'nftables' ? fastPlan(this.lastDesired, this.last, desired, this.memo) : null;
    const next = fast ? fast.compiled : compile(desired, this.memo);
    const base = { kind: this.kind, next, frontends: next.size, desired };
    const nftFull = (): SyncPlan => {
      const p = planNftFull(next);
      return { ...base, mode: 'full', nft: p.script, ipvs: '', addrs: '', changed: next.size, marks: new Map(), nftState: p.state };
    };
    if (this.last === null || (this.kind === 'nftables' && this.nftState === null)) { // = fullNext()
      if (this.kind === 'nftables') return nftFull();
      const p = renderIpvsFull(next, this.marks, ipvsKernel);
      return { ...base, mode: 'full', nft: p.nft, ipvs: p.ipvs, addrs: p.addrs, changed: next.size, marks: p.marks };
    }
    const d = fast ? fast.diff : diffCompiled(this.last, next);
    if (isEmptyDiff(d)) return { ...base, mode: 'noop', nft: '', ipvs: '', addrs: '', changed: 0, marks: this.marks };
    if (this.kind === 'nftables') {
      // a sized set would overflow → full sync (it sizes the sets anew)
      const p = planNftIncremental(this.last, next, this.nftState!, d);
      return p ? { ...base, mode: 'incremental', nft: p.script, ipvs: '', addrs: '', changed: diffSize(d), marks: new Map(), nftDelta: p.delta } : nftFull();
    }
    const p = renderIpvsIncremental(this.last, next, this.marks);
    return { ...base, mode: 'incremental', nft: p.nft, ipvs: p.ipvs, addrs: p.addrs, changed: diffSize(d), marks: p.marks };
  }

  committed(plan: SyncPlan): void {
    this.last = plan.next;
    this.lastDesired = plan.desired;
    this.marks = plan.marks;
    if (plan.nftState) this.nftState = plan.nftState;
    else if (plan.nftDelta && this.nftState) applyNftDelta(this.nftState, plan.nftDelta);
  }

  /** Any failure: forget what we think the kernel holds; the next plan is a full resync. */
  failed(): void {
    this.last = null;
    this.nftState = null;
  }

  /** Periodic safety net (kube-proxy resyncs fully every hour): next plan is full. */
  requestFullResync(): void {
    this.last = null;
    this.nftState = null;
  }

  lastApplied(): Compiled | null {
    return this.last;
  }
}
