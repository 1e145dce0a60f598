/**
 * The desired LB state of ONE local task's namespace, kept incrementally (issue 18 §4): an endpoint
 * change replaces only its service's entry — conflict check, overlay gate and the next
 * `DeltaDesired` version cost O(that service), not O(every service on the task's networks). The
 * syncer then plans from the version's changes alone (core/lb/delta-plan.ts).
 *
 * lb.ts `touch`es the namespace with each changed (network, service); `plan` re-reads only those
 * from LbState (whose per-service objects are memoized). A full rebuild — the previous path, kept
 * as the reference the incremental one must equal — happens on first use, when the task's networks
 * change, when the overlay's view becomes known or unknown, and while any VIP:port is claimed by
 * two services (conflicts are resolved first-come by service id over the whole list, which only a
 * full pass can do; a conflict is a misconfiguration, not the steady state). Even a rebuild hands
 * the syncer a delta against the previous version (an O(services) map compare), so the kernel
 * transaction stays O(change).
 *
 * Overlay gate: a new gate version (overlay progress, membership) re-gates only the services that
 * hold a backend back; a service with nothing held keeps its object, as lb.ts already assumed when
 * it replanned only namespaces with held backends on overlay progress (what passed the gate was
 * applied, and an applied backend is in force: core/lb/overlay-gate.ts).
 */
import { DeltaDesired, type DesiredChange } from '../../core/lb/desired-delta.js';
import type { VipService } from '../../core/lb/model.js';
import { gateServices, type GateContext, type GateMemo, type HeldBackend } from '../../core/lb/overlay-gate.js';
import { vipClaims, type VipConflictMemo } from './plan.js';
import type { LbState } from './state.js';

const SEP = '\0';

const claimKeys = vipClaims;

export interface NsPlan {
  desired: DeltaDesired;
  conflicts: string[];
  held: HeldBackend[];
}

export class TaskNsDesired {
  private desired = DeltaDesired.of(new Map());
  /** The task's networks the entries were built for (joined). */
  private networks: string | null = null;
  private gateVersion: string | null = null;
  private gateKnown = false;
  /** `network\0serviceId` → the service as LbState gave it (before conflicts and gate). */
  private readonly src = new Map<string, VipService>();
  /** `network\0serviceId` → what the desired state holds (gated). */
  private readonly out = new Map<string, VipService>();
  private readonly held = new Map<string, HeldBackend[]>();
  /** `vip proto port` → service keys claiming it; `contested`: claims with two or more. */
  private readonly claims = new Map<string, Set<string>>();
  private contested = 0;
  private conflicts: string[] = [];
  private readonly dirty = new Set<string>();
  private all = true;
  /** Plans done by a full rebuild (tests, bench). */
  rebuilds = 0;

  /** A record of `serviceId` on `network` changed. */
  touch(network: string, serviceId: string): void {
    if (!this.all) this.dirty.add(`${network}${SEP}${serviceId}`);
  }

  /** The next plan rebuilds everything. */
  invalidate(): void {
    this.all = true;
    this.dirty.clear();
  }

  plan(networks: readonly string[], state: LbState, ctx: GateContext, gateMemo: GateMemo, conflictMemo: VipConflictMemo): NsPlan {
    const netKey = networks.join('\n');
    const known = ctx.programmed !== null;
    if (this.all || netKey !== this.networks || known !== this.gateKnown || this.contested > 0) return this.rebuild(networks, netKey, state, ctx, gateMemo, conflictMemo);
    const keys = new Set(this.dirty);
    if (ctx.version !== this.gateVersion) for (const k of this.held.keys()) keys.add(k);
    this.dirty.clear();
    this.gateVersion = ctx.version;
    // Claims first: a VIP:port now claimed twice is resolved over the whole list (before `out` moves).
    const next: Array<[string, string, VipService | null]> = [];
    for (const k of keys) {
      const i = k.indexOf(SEP);
      const network = k.slice(0, i);
      const s = networks.includes(network) ? state.vipService(network, k.slice(i + 1)) : null;
      this.setSrc(k, s);
      next.push([k, network, s]);
    }
    if (this.contested > 0) return this.rebuild(networks, netKey, state, ctx, gateMemo, conflictMemo);
    const changes: DesiredChange<VipService>[] = [];
    for (const [k, network, s] of next) {
      const before = this.out.get(k) ?? null;
      const after = s ? this.gate(k, network, s, ctx, gateMemo) : null;
      if (!s) this.held.delete(k);
      if (after) this.out.set(k, after);
      else this.out.delete(k);
      if (before !== after) changes.push({ key: k, before, after });
    }
    this.conflicts = [];
    this.desired = this.desired.next({ services: changes, ingress: [] });
    return { desired: this.desired, conflicts: this.conflicts, held: this.heldList() };
  }

  private gate(k: string, network: string, s: VipService, ctx: GateContext, memo: GateMemo): VipService {
    const g = gateServices([{ network, service: s }], ctx, memo);
    if (g.held.length) this.held.set(k, g.held);
    else this.held.delete(k);
    return g.services[0]!;
  }

  /** The reference path: every service of the task's networks, conflicts resolved, gated. */
  private rebuild(networks: readonly string[], netKey: string, state: LbState, ctx: GateContext, gateMemo: GateMemo, conflictMemo: VipConflictMemo): NsPlan {
    this.rebuilds++;
    this.all = false;
    this.dirty.clear();
    this.networks = netKey;
    this.gateKnown = ctx.programmed !== null;
    this.gateVersion = ctx.version;
    for (const k of [...this.src.keys()]) this.setSrc(k, null);
    const where = new Map<VipService, { key: string; network: string }>();
    const all: VipService[] = [];
    for (const network of networks) {
      for (const s of state.vipServices(network)) {
        const key = `${network}${SEP}${s.id}`;
        where.set(s, { key, network });
        this.setSrc(key, s);
        all.push(s);
      }
    }
    const { services, conflicts } = conflictMemo.run(all);
    const next = new Map<string, VipService>();
    this.held.clear();
    for (const s of services) {
      const w = where.get(s)!;
      next.set(w.key, this.gate(w.key, w.network, s, ctx, gateMemo));
    }
    const changes: DesiredChange<VipService>[] = [];
    for (const [k, before] of this.out) {
      const after = next.get(k) ?? null;
      if (before !== after) changes.push({ key: k, before, after });
    }
    for (const [k, after] of next) if (!this.out.has(k)) changes.push({ key: k, before: null, after });
    this.out.clear();
    for (const [k, s] of next) this.out.set(k, s);
    this.conflicts = conflicts;
    this.desired = this.desired.next({ services: changes, ingress: [] });
    return { desired: this.desired, conflicts, held: this.heldList() };
  }

  /** Replaces the source object of `k`, keeping the claims (and the contested count) in step. */
  private setSrc(k: string, s: VipService | null): void {
    const old = this.src.get(k);
    if (old === s || (old === undefined && s === null)) return;
    if (old) {
      for (const c of claimKeys(old)) {
        const set = this.claims.get(c);
        if (!set?.delete(k)) continue;
        if (set.size === 1) this.contested--;
        if (set.size === 0) this.claims.delete(c);
      }
    }
    if (!s) return void this.src.delete(k);
    this.src.set(k, s);
    for (const c of claimKeys(s)) {
      let set = this.claims.get(c);
      if (!set) this.claims.set(c, (set = new Set()));
      if (set.has(k)) continue;
      set.add(k);
      if (set.size === 2) this.contested++;
    }
  }

  private heldList(): HeldBackend[] {
    if (this.held.size === 0) return [];
    const out: HeldBackend[] = [];
    for (const k of [...this.held.keys()].sort()) out.push(...this.held.get(k)!);
    return out;
  }
}
