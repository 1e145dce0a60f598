/**
 * What one sync of the agent's load balancer does to a namespace (when to sync is lb.ts's, after
 * core/lb/schedule.ts): plan it — a local task's VIP services (ns-desired.ts), the ingress
 * sandbox's published ports, the node's own namespace for host publish mode — with remote
 * backends gated on the overlay (gate.ts), apply the plan in one dataplane transaction, then queue
 * the conntrack flush of the backends it took out (ct-flush.ts).
 *
 * Keeps, per namespace, what it last applied with success (drain and convergence acks, and the
 * drift check judge against it: lb.ts reads these, never writes them) and the apply counters.
 */
import type { ApplyResult, Dataplane } from '../../adapters/dataplane/types.js';
import { toMeshError } from '../../core/errors.js';
import type { LbDesired } from '../../core/lb/model.js';
import { HOST_NS, INGRESS_NS, describeNs, type NsKey } from '../../core/lb/schedule.js';
import { DriftTracker } from './drift.js';
import type { StaleFlush } from './ct-flush.js';
import type { IngressSide } from './ingress-side.js';
import { gateContext, gatedIngress, heldForLog } from './gate.js';
import { newNsEntry, type LbStats, type LbSubsystemOptions, type NsEntry } from './types.js';
import { dropIngressConflicts, hostPublishesOf, taskNetnsName, VipConflictMemo } from './plan.js';
import { TaskNsDesired } from './ns-desired.js';
import { HostModePlumber } from './host.js';
import type { LbState } from './state.js';
import { lbStats } from './status.js';

export class NamespaceSync {
  /** The namespaces there are, by schedule key (lb.ts reads them: acks, status, drift check). */
  readonly ns = new Map<NsKey, NsEntry>();
  /** Drain acks: the desired state last applied with success per namespace entry. */
  readonly appliedOf = new WeakMap<NsEntry, LbDesired>();
  /** Per namespace: the last VIP conflict resolution, reused while an endpoint change cannot alter it. */
  private readonly conflictMemos = new WeakMap<NsEntry, VipConflictMemo>();
  /** Per local task: its namespace's desired state, kept incrementally (ns-desired.ts). */
  readonly taskDesired = new Map<string, TaskNsDesired>();
  /** Applies in flight and drift counters for the periodic check (drift.ts). */
  readonly drift = new DriftTracker<NsEntry>();
  private readonly hostPlumber: HostModePlumber;
  /** Tasks plumbed for host publish mode since the last periodic check (cleared by recheckHostMode). */
  private readonly hostAttached = new Set<string>();
  private readonly totals = { syncs: 0, fullResyncs: 0, failures: 0, totalSyncMs: 0, lastSyncMs: 0 };
  /** Namespace applies that succeeded. */
  applies = 0;

  constructor(private readonly o: LbSubsystemOptions, private readonly dp: Dataplane, private readonly state: LbState, private readonly ingress: IngressSide, private readonly ctFlush: StaleFlush) {
    this.hostPlumber = new HostModePlumber(o.exec);
  }

  /** One loop run: each namespace in its own transaction; the failed ones are retried. */
  async run(keys: NsKey[]): Promise<NsKey[]> {
    const failed: NsKey[] = [];
    for (const k of keys) {
      try {
        if (k === INGRESS_NS) await this.syncIngress();
        else if (k === HOST_NS) await this.syncHostMode();
        else await this.syncTask(k);
      } catch (e) {
        failed.push(k);
        this.o.log.error({ err: e, what: describeNs(k) }, 'lb sync failed (retrying)');
      }
    }
    return failed;
  }

  /** A local task's namespace: the worker's name for it, else `<prefix>t-<id[0:12]>`. */
  netnsOf(taskId: string): string {
    return this.o.taskNetns?.(taskId) ?? taskNetnsName(this.o.prefix, taskId);
  }

  private async applyNs(e: NsEntry): Promise<void> {
    const want = e.desired;
    try {
      e.last = await this.drift.track(e, () => this.dp.apply(want, { netns: e.netns, ...(e.kind === 'host' ? { sysctls: false } : {}) }));
      this.appliedOf.set(e, want); // drain-ack: what the kernel holds
      this.o.onSettled?.(); // drain-ack hook
      e.lastAt = this.o.clock.now();
      e.error = null;
      this.applies++;
      this.count(e.last);
    } catch (err) {
      e.error = toMeshError(err).message;
      this.totals.failures++;
      throw err;
    }
    this.ctFlush.queue(e.netns, e.last.stale, want); // after the apply: no packet re-pins a removed backend
  }

  private async syncTask(taskId: string): Promise<void> {
    const t = this.state.localTasks().get(taskId);
    const prev = this.ns.get(taskId);
    if (!t) {
      // The task's records are gone: forget its namespace here and in the dataplane.
      if (prev) {
        this.ns.delete(taskId);
        this.dp.forget({ netns: prev.netns });
        this.ctFlush.forget(prev.netns);
      }
      this.taskDesired.delete(taskId);
      return;
    }
    const netns = this.netnsOf(taskId);
    if (prev && prev.netns !== netns) (this.dp.forget({ netns: prev.netns }), this.ctFlush.forget(prev.netns));
    const e = prev ?? newNsEntry(netns, 'task', taskId);
    let cm = this.conflictMemos.get(e);
    if (!cm) this.conflictMemos.set(e, (cm = new VipConflictMemo()));
    let td = this.taskDesired.get(taskId);
    if (!td) this.taskDesired.set(taskId, (td = new TaskNsDesired()));
    const { desired, conflicts, held } = td.plan([...t.networks].sort(), this.state, this.gateOf(e), e.gate, cm);
    e.netns = netns;
    e.desired = desired;
    e.conflicts = conflicts;
    e.held = held;
    this.noteHeld(e);
    this.ns.set(taskId, e);
    await this.applyNs(e);
  }

  /**
   * The gate has no timer: a held backend waits for an event that moves it — the overlay
   * programming it (onOverlayProgress replans), its node coming back, or its record going away
   * (the manager rescheduled the task). `node-dead` makes the one case that used to need a bound
   * explicit (see core/lb/overlay-gate.ts). What is held, and why, is in `netctl debug lb`.
   */
  private gateOf(e: NsEntry): ReturnType<typeof gateContext> {
    return gateContext(this.o.overlay, this.state, this.appliedOf.get(e));
  }

  private noteHeld(e: NsEntry): void {
    if (!e.held.length) {
      e.heldSince = null;
      return;
    }
    if (e.heldSince !== null) return;
    e.heldSince = this.o.clock.now();
    this.o.log.info({ netns: e.netns, held: heldForLog(e.held, this.o.overlay, this.state) }, 'lb: remote backends held back until the overlay programs them');
  }

  // ---- ingress (routing mesh; plumbing and configuration in ingress-side.ts) ----
  private async syncIngress(): Promise<void> {
    if (!(await this.ingress.prepare())) return;
    const { ingress, conflicts } = dropIngressConflicts(this.state.ingress());
    const e = this.ns.get(INGRESS_NS) ?? newNsEntry(this.ingress.plumber.sbox, 'ingress', null);
    const gated = gatedIngress(ingress, this.gateOf(e), e.gate);
    e.desired = { services: [], ingress: gated.ingress };
    e.conflicts = conflicts;
    e.held = gated.held;
    this.noteHeld(e);
    this.ns.set(INGRESS_NS, e);
    await this.applyNs(e);
    await this.ingress.programHost(ingress);
  }

  // ---- host publish mode ----
  /** Plumbs local tasks that publish in host mode, then programs the node's own namespace. */
  private async syncHostMode(): Promise<void> {
    const local = this.state.localRecords();
    const pubs = hostPublishesOf(local, this.o.nodeName);
    const want = new Map<string, string>();
    for (const g of pubs) for (const b of g.backends) want.set(b.id, b.ip);
    for (const [taskId, ip] of want) {
      if (this.hostAttached.has(taskId)) continue;
      await this.hostPlumber.ensureTask(taskId, this.netnsOf(taskId), ip);
      this.hostAttached.add(taskId);
    }
    for (const taskId of [...this.hostAttached]) {
      if (want.has(taskId)) continue;
      await this.hostPlumber.removeTask(taskId);
      this.hostAttached.delete(taskId);
    }
    const prev = this.ns.get(HOST_NS);
    if (!prev && pubs.length === 0) return; // never had host-mode ports: leave the node's namespace alone
    // Host mode balances over this node's own tasks only: nothing to wait for in the overlay.
    const e = prev ?? newNsEntry('', 'host', null);
    e.desired = { services: [], ingress: pubs };
    this.ns.set(HOST_NS, e);
    await this.applyNs(e);
  }

  /** The periodic check: every host-mode task is plumbed again (idempotent) at the next host sync. */
  recheckHostMode(): void {
    this.hostAttached.clear();
  }

  private count(r: ApplyResult): void {
    if (r.mode === 'noop') return;
    this.totals.syncs++;
    if (r.mode === 'full') this.totals.fullResyncs++;
    this.totals.lastSyncMs = r.durationMs;
    this.totals.totalSyncMs += r.durationMs;
  }

  /** Counters for metrics (meshd_lb_*) and what the namespaces hold now (status.ts). */
  stats(): LbStats {
    return lbStats(this.ns.values(), { ...this.totals, driftResyncs: this.drift.resyncs, lastDrift: this.drift.last, backend: this.dp.kind });
  }
}
