/**
 * The IPVS backend's syncer (see syncer.ts): a full resync is the difference from the kernel's
 * read-back (`ipvsadm -S -n` + the mark table, passed to `plan`), never `ipvsadm -C` on a live
 * node; fwmarks are carried across syncs so live connections keep their service (ipvs-render.ts).
 *
 * Plans carry no stale backends (`stale: []`, see ct-flush.ts): IPVS forwards an established flow
 * by its own connection table, and with `net.ipv4.vs.expire_nodest_conn=1` (timeouts.ts
 * IPVS_SYSCTLS) the kernel expires the connections of a removed real server itself — since Linux
 * 5.9 from a work item queued when the real server is deleted, before that on the flow's next
 * packet (which is dropped; the one after goes to a live server) — and with `vs.conntrack=1`
 * expiring an IPVS connection drops its conntrack entry too (ip_vs_conn_drop_conntrack).
 * Pure.
 */
import { diffCompiled, diffSize, isEmptyDiff } from './diff.js';
import { renderIpvsFull, renderIpvsIncremental, type MarkTable } from './ipvs-render.js';
import type { IpvsKernelView } from './ipvs-save.js';
import { compile, type Compiled, type CompileMemo, type LbDesired } from './model.js';
import type { LbSyncer, PlanBase } from './syncer.js';

export interface IpvsPlan extends PlanBase {
  kind: 'ipvs';
  /** `nft -f -` script for the mark table. */
  nft: string;
  /** ipvsadm-restore input. */
  ipvs: string;
  /** `ip -batch -force` script for VIP addresses on lo. */
  addrs: string;
  marks: MarkTable;
}

export class IpvsSyncer implements LbSyncer<IpvsPlan, IpvsKernelView> {
  readonly kind = 'ipvs' as const;
  private last: Compiled | null = null;
  private marks: MarkTable = new Map();
  private readonly memo: CompileMemo = new WeakMap();

  fullNext(): boolean {
    return this.last === null;
  }

  /** `kernel`: the kernel's IPVS state for a full resync (absent = an empty namespace). */
  plan(desired: LbDesired, kernel?: IpvsKernelView): IpvsPlan {
    const next = compile(desired, this.memo);
    const base = { kind: this.kind, next, frontends: next.size, desired };
    if (this.last === null) {
      const p = renderIpvsFull(next, this.marks, kernel);
      return { ...base, mode: 'full', nft: p.nft, ipvs: p.ipvs, addrs: p.addrs, changed: next.size, marks: p.marks, stale: [] };
    }
    const d = diffCompiled(this.last, next);
    if (isEmptyDiff(d)) return { ...base, mode: 'noop', nft: '', ipvs: '', addrs: '', changed: 0, marks: this.marks, stale: [] };
    const p = renderIpvsIncremental(this.last, next, this.marks);
    return { ...base, mode: 'incremental', nft: p.nft, ipvs: p.ipvs, addrs: p.addrs, changed: diffSize(d), marks: p.marks, stale: [] };
  }

  committed(plan: IpvsPlan): void {
    this.last = plan.next;
    this.marks = plan.marks;
  }

  failed(): void {
    this.last = null;
  }

  requestFullResync(): void {
    this.failed();
  }

  lastApplied(): Compiled | null {
    return this.last;
  }
}
