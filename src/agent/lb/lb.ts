/**
 * The agent's load balancer: from the `endpoints` gossip tables to the kernel.
 *
 * - VIP balancing: every LOCAL task namespace (a record on a non-ingress network owned by this
 *   node) gets the VipService set of all services on that task's networks, applied with the
 *   dataplane inside the task's namespace (output hook: the client's own sandbox picks the task).
 * - Routing mesh: once this node has an ingress address (`PUT /v1/ingress`), it hosts an ingress
 *   sandbox on the `ingress` overlay (ingress-side.ts, ingress.ts); published ports of services
 *   whose tasks are attached to `ingress` are balanced there, and the host namespace DNATs
 *   underlay:published → the sandbox. Task ingress attachments are requested per task
 *   (`PUT /v1/ingress/tasks/:task`); this subsystem plumbs them (ing0) and publishes their records
 *   on `ingress`, mirroring the task's running/draining state.
 *
 * Scheduling is core/lb/schedule.ts's (activation, debounce, retry, the periodic drift check):
 * this shell feeds it events, marks the namespaces it names in the one ReconcileLoop (one
 * dataplane transaction per dirty namespace, never two runs at once) and runs its checks. A
 * failed apply is retried (the dataplane makes it a full resync); the check reads the kernel back
 * and fully resyncs a namespace whose kernel drifted from what was applied (the safety net).
 *
 * Overlay gate: a NEW remote backend is left out of a namespace's plan until this node's overlay
 * reports its FDB/neighbour entries programmed (core/lb/overlay-gate.ts, gate.ts): otherwise a
 * connection DNATed to it in the 1-2 s before the overlay catches up is lost. The overlay's
 * progress events re-plan the namespaces holding a backend back; the apply loop itself never
 * waits for the overlay, and drains / removals are never gated. Status lists held backends.
 *
 * A task's namespace is forgotten (here and in the dataplane's per-namespace sync state) when
 * its task's records are gone, so task churn does not grow the agent's heap.
 */
import type { Router } from '../../adapters/api/server.js';
import { createDataplane } from '../../adapters/dataplane/detect.js';
import type { ApplyResult, Dataplane } from '../../adapters/dataplane/types.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { Timer } from '../../core/clock.js';
import { ENDPOINT_TABLE, INGRESS_NETWORK, decodeEndpoint, type EndpointRecord } from '../../core/endpoints.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import { DrainIndex, drainedIn } from '../../core/lb/drained.js';
import { lbProgrammed } from '../../core/convergence/programmed.js';
import type { LbDesired } from '../../core/lb/model.js';
import { DEFAULT_LB_SCHEDULE, HOST_NS, INGRESS_NS, LbSchedule, describeNs, keysOfTableChange, lbLoopConfig, type LbEvent, type LbScheduleConfig, type NsKey } from '../../core/lb/schedule.js';
import type { Subsystem } from '../agent.js';
import { DriftTracker } from './drift.js';
import { defaultFlusher, StaleFlush } from './ct-flush.js';
import { IngressSide } from './ingress-side.js';
import { gateContext, gatedIngress, heldForLog } from './gate.js';
import { newNsEntry, type LbStats, type LbSubsystemOptions, type NsEntry } from './types.js';
import { dropIngressConflicts, hostPublishesOf, taskNetnsName, VipConflictMemo } from './plan.js';
import { TaskNsDesired } from './ns-desired.js';
import { HostModePlumber } from './host.js';
import { registerLbRoutes } from './routes.js';
import { LbState } from './state.js';
import { FreshRead } from './fresh-read.js';
import { lbStats, lbStatus, type LbNsStatus } from './status.js';

export type { LbStats, LbSubsystemOptions, NsEntry } from './types.js';

export class LbSubsystem implements Subsystem {
  readonly name = 'lb';
  readonly dp: Dataplane;
  private readonly state: LbState;
  readonly ingress: IngressSide;
  private readonly ns = new Map<NsKey, NsEntry>();
  /** Drain acks: the desired state last applied with success per namespace entry. */
  private readonly appliedOf = new WeakMap<NsEntry, LbDesired>();
  /** Drain acks: active backend ids per applied desired state (core/lb/drained.ts). */
  private readonly drainIndex = new DrainIndex();
  /** Per namespace: the last VIP conflict resolution, reused while an endpoint change cannot alter it. */
  private readonly conflictMemos = new WeakMap<NsEntry, VipConflictMemo>();
  /** Per local task: its namespace's desired state, kept incrementally (ns-desired.ts). */
  private readonly taskDesired = new Map<string, TaskNsDesired>();
  /** Applies in flight and drift counters for the periodic check (drift.ts). */
  private readonly drift = new DriftTracker<NsEntry>();
  private readonly sched: LbSchedule;
  private readonly schedCfg: LbScheduleConfig;
  private loop: ReconcileLoop<NsKey>;
  /** The one timer of the schedule (its nextDeadline: an overlay poll or the drift check). */
  private timer: Timer | null = null;
  private readonly hostPlumber: HostModePlumber;
  /** Conntrack entries of backends an apply removed are deleted right after it (ct-flush.ts). */
  readonly ctFlush: StaleFlush;
  /** Tasks plumbed for host publish mode since the last periodic check. */
  private readonly hostAttached = new Set<string>();
  private readonly totals = { syncs: 0, fullResyncs: 0, failures: 0, totalSyncMs: 0, lastSyncMs: 0 };
  private badRecords = 0;
  applies = 0;

  constructor(private readonly o: LbSubsystemOptions) {
    this.dp = o.dataplane ?? createDataplane('auto', { exec: o.exec });
    this.state = new LbState(o.nodeName);
    this.ingress = new IngressSide(o, this.state, (id) => this.netnsOf(id), () => this.feed({ type: 'changed', keys: [INGRESS_NS] }));
    this.hostPlumber = new HostModePlumber(o.exec);
    this.ctFlush = new StaleFlush(o.conntrack ?? defaultFlusher(this.dp, o.exec), o.log, o.clock);
    this.schedCfg = {
      ...DEFAULT_LB_SCHEDULE,
      ...(o.debounceMs !== undefined ? { debounceMs: o.debounceMs } : {}),
      ...(o.checkMs !== undefined ? { checkMs: o.checkMs } : {}),
      ...(o.maxApplyDuty !== undefined ? { maxApplyDuty: o.maxApplyDuty } : {}),
    };
    this.sched = new LbSchedule(this.schedCfg);
    this.loop = this.newLoop();
    o.gossip.onEvent((ev) => this.onGossip(ev));
    o.overlay.onProgress(() => this.onOverlayProgress());
  }

  private newLoop(): ReconcileLoop<NsKey> {
    return new ReconcileLoop<NsKey>({
      clock: this.o.clock,
      run: (keys) => this.run(keys),
      config: lbLoopConfig(this.schedCfg),
    });
  }

  async start(): Promise<void> {
    if (this.loop.stopped) this.loop = this.newLoop();
    this.ingress.load();
    for (const net of this.o.gossip.core.networks()) {
      for (const e of this.o.gossip.core.tableEntries(net, ENDPOINT_TABLE)) this.onTable('create', net, e.key, e.value);
    }
    // Nothing is applied before the overlay is active (it waits for the worker's adoption and
    // gossip sync) and has finished its first reconcile: from then on its programmed view is
    // known (or known to be unknown: nothing is gated), so the first full apply neither withholds
    // backends the kernel still serves nor selects ones the overlay has not programmed.
    this.feed({ type: 'start' });
  }

  async stop(): Promise<void> {
    this.feed({ type: 'stop' });
    await this.loop.stop();
    await this.ctFlush.stop();
    await this.ingress.stop();
    // Rules stay in the kernel: tasks keep being balanced while the agent is away.
  }

  // ---- the schedule's shell ----
  private feed(ev: LbEvent): void {
    this.sched.handle(ev, this.o.clock.now());
    this.act();
  }

  private act(): void {
    for (const a of this.sched.drain()) {
      if (a.type === 'sync') for (const k of a.keys) this.loop.mark(k, a.delayMs);
      else if (a.type === 'check') void this.check();
      else this.pollOverlay();
    }
    this.timer?.cancel();
    this.timer = null;
    const at = this.sched.nextDeadline();
    if (at === undefined) return;
    this.timer = this.o.clock.setTimer(Math.max(0, at - this.o.clock.now()), () => {
      this.timer = null;
      this.sched.tick(this.o.clock.now());
      this.act();
    });
  }

  private pollOverlay(): void {
    const ready = this.o.overlay.active && this.o.overlay.reconciledOnce;
    if (ready) this.o.log.info({ backend: this.dp.kind, local: this.state.localTasks().size }, 'lb active');
    this.feed({ type: 'overlay', ready, keys: ready ? this.allKeys() : [] });
  }

  /** Every namespace there is or was: local tasks, those still programmed, ingress and host. */
  private allKeys(): NsKey[] {
    const keys = new Set<NsKey>(this.state.localTasks().keys());
    for (const e of this.ns.values()) if (e.taskId) keys.add(e.taskId);
    return [...keys, INGRESS_NS, HOST_NS];
  }

  /** One loop run: each namespace in its own transaction; the failed ones are retried. */
  private async run(keys: NsKey[]): Promise<NsKey[]> {
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

  // ---- gossip input ----
  private onGossip(ev: GossipEvent): void {
    if ((ev.type === 'create' || ev.type === 'update' || ev.type === 'delete') && ev.table === ENDPOINT_TABLE) {
      this.onTable(ev.type, ev.network, ev.key, ev.value);
    }
  }

  private onTable(type: 'create' | 'update' | 'delete', network: string, key: string, value: Uint8Array): void {
    let rec: EndpointRecord | null = null;
    if (type !== 'delete') {
      const d = decodeEndpoint(value);
      if (!d.ok || d.record.network !== network) {
        this.badRecords++;
        return;
      }
      rec = d.record;
    }
    const c = this.state.set(network, key, rec);
    if (!c) return;
    if (c.node === this.o.nodeName && type === 'create') this.ingress.taskCreated(c.taskId);
    const localTasksOn: string[] = [];
    for (const [taskId, t] of this.state.localTasks()) if (t.networks.has(network)) localTasksOn.push(taskId);
    for (const taskId of localTasksOn) {
      const d = this.taskDesired.get(taskId);
      d?.touch(network, c.serviceId);
      if (c.prevServiceId !== undefined) d?.touch(network, c.prevServiceId);
    }
    // A local task's own record: its networks may have changed.
    if (c.node === this.o.nodeName) this.taskDesired.get(c.taskId)?.invalidate();
    const keys = keysOfTableChange(c, { nodeName: this.o.nodeName, ingressNetwork: INGRESS_NETWORK, localTasksOn, attachesIngress: this.ingress.attaches(c.taskId) });
    this.feed({ type: 'changed', keys });
  }

  /**
   * The overlay programmed (or dropped) remote endpoints: replan the namespaces holding a
   * backend back. Only those: a plan with nothing held does not depend on the overlay.
   */
  private onOverlayProgress(): void {
    const keys: NsKey[] = [];
    for (const [k, e] of this.ns) if (e.held.length) keys.push(k);
    this.feed({ type: 'changed', keys });
  }

  /**
   * Drain-ack query (src/agent/drain/ack.ts): true when this node's kernel sends no NEW
   * connection to task `taskId` (core/lb/drained.ts). Backend ids are task ids on every network
   * (`_network` is informative).
   */
  drained(_network: string, taskId: string): boolean {
    if (!this.sched.active) return false;
    const views = function* (self: LbSubsystem) {
      for (const e of self.ns.values()) yield { applied: self.appliedOf.get(e), desired: e.desired };
    };
    return drainedIn(views(this), taskId, this.drainIndex);
  }

  /**
   * Convergence-ack query (src/agent/drain/convergence.ts): true when every namespace of this
   * node that should balance to `rec` has APPLIED it (core/convergence/programmed.ts): the task
   * namespaces on its network (VIP), the ingress sandbox (published ports on `ingress`).
   */
  programs(rec: EndpointRecord): boolean {
    if (!this.sched.active) return false;
    const self = this;
    const views = function* () {
      if (rec.network === INGRESS_NETWORK) {
        if (!self.ingress.configured) return;
        const wants = self.state.ingress().some((p) => p.backends.some((b) => b.id === rec.taskId && b.state === 'active'));
        const e = self.ns.get(INGRESS_NS);
        yield { wants, applied: e ? self.appliedOf.get(e) : undefined };
        return;
      }
      // Only the record's own service can hold its task as a backend (one record per task and network): O(its
      // backends), not a scan of every service on the network (asked after every apply, per pending version).
      const svc = rec.vip !== null ? self.state.vipService(rec.network, rec.serviceId) : null;
      const wants = svc !== null && svc.vip === rec.vip && svc.backends.some((b) => b.id === rec.taskId && b.state === 'active');
      if (!wants) return;
      for (const [taskId, t] of self.state.localTasks()) {
        if (!t.networks.has(rec.network)) continue;
        const e = self.ns.get(taskId);
        yield { wants, applied: e ? self.appliedOf.get(e) : undefined };
      }
    };
    return lbProgrammed(views(), rec.taskId, rec.ip, rec.network === INGRESS_NETWORK ? null : rec.vip);
  }

  /** Resolves when nothing is dirty and no sync runs (tests). */
  async idle(): Promise<void> {
    await this.loop.idle();
  }

  private netnsOf(taskId: string): string {
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

  // ---- periodic drift check (when: core/lb/schedule.ts) ----
  private async check(): Promise<void> {
    let resync: NsKey[] = [];
    try {
      resync = await this.drifted();
    } catch (e) {
      this.o.log.error({ err: e }, 'lb drift check failed (checked again next period)');
    }
    if (this.ingress.recheck()) resync.push(INGRESS_NS);
    this.hostAttached.clear();
    resync.push(HOST_NS);
    this.feed({ type: 'checked', resync });
  }

  /** Namespaces whose kernel differs from what was applied (drift.ts judges): resynced fully. */
  private async drifted(): Promise<NsKey[]> {
    const snap = this.drift.begin(this.ns.values());
    const out: NsKey[] = [];
    for (const [k, s] of await this.statusRows()) {
      const e = this.ns.get(k);
      if (!e || !this.drift.judge(snap, e, s)) continue;
      this.o.log.warn({ netns: s.netns, drift: s.drift, error: s.error }, 'lb drift: full resync');
      this.dp.requestFullResync({ netns: s.netns });
      out.push(k);
    }
    return out;
  }

  /** Unfiltered read-backs go through one shared, fresh read (fresh-read.ts: no pile-up under a slow host). */
  private readonly rows = new FreshRead(() => this.readRows());

  private statusRows(service?: string): Promise<Array<[NsKey, LbNsStatus]>> {
    return service === undefined ? this.rows.get() : this.readRows(service);
  }

  private async readRows(service?: string): Promise<Array<[NsKey, LbNsStatus]>> {
    const out: Array<[NsKey, LbNsStatus]> = [];
    const names = new Map<string, string>();
    for (const n of this.state.networks()) for (const r of this.state.records(n)) names.set(r.serviceId, r.serviceName);
    for (const [k, e] of this.ns) {
      const s = await lbStatus(this.dp, e, service, (id) => names.get(id), this.o.overlay.lastErrorMessage, this.appliedOf.get(e));
      if (s) out.push([k, s]);
    }
    return out;
  }

  /** `GET /v1/lb/status` (routes.ts): MESHD_NOT_FOUND for a service this node does not know. */
  async status(service?: string): Promise<object> {
    const rows = (await this.statusRows(service)).map(([, s]) => s);
    if (service && rows.length === 0 && !this.state.networks().some((n) => this.state.records(n).some((x) => x.serviceId === service || x.serviceName === service))) {
      throw new MeshError('MESHD_NOT_FOUND', `service ${service} is not known on ${this.o.nodeName}`);
    }
    return {
      node: this.o.nodeName, backend: this.dp.kind, active: this.sched.active, applies: this.applies, badRecords: this.badRecords, stats: this.stats(),
      ingress: this.ingress.status(), conntrack: this.ctFlush.stats,
      namespaces: rows,
    };
  }

  routes(router: Router): void {
    registerLbRoutes(router, this, this.ingress);
  }
}
