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
 * This file is that shell (with the gossip input, the drain and convergence acks, the drift check
 * and the status); what one sync does to a namespace — plan, gate, apply, count — is ns-sync.ts's.
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
import type { Dataplane } from '../../adapters/dataplane/types.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { Timer } from '../../core/clock.js';
import { ENDPOINT_TABLE, INGRESS_NETWORK, decodeEndpoint, type EndpointRecord } from '../../core/endpoints.js';
import { MeshError } from '../../core/errors.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import { DrainIndex, drainedIn } from '../../core/lb/drained.js';
import { lbProgrammed } from '../../core/convergence/programmed.js';
import type { LbDesired } from '../../core/lb/model.js';
import { DEFAULT_LB_SCHEDULE, HOST_NS, INGRESS_NS, LbSchedule, keysOfTableChange, lbLoopConfig, type LbEvent, type LbScheduleConfig, type NsKey } from '../../core/lb/schedule.js';
import type { Subsystem } from '../agent.js';
import type { DriftTracker } from './drift.js';
import { defaultFlusher, StaleFlush } from './ct-flush.js';
import { IngressSide } from './ingress-side.js';
import type { LbStats, LbSubsystemOptions, NsEntry } from './types.js';
import type { TaskNsDesired } from './ns-desired.js';
import { NamespaceSync } from './ns-sync.js';
import { registerLbRoutes } from './routes.js';
import { LbState } from './state.js';
import { FreshRead } from './fresh-read.js';
import { lbStatus, type LbNsStatus } from './status.js';

export type { LbStats, LbSubsystemOptions, NsEntry } from './types.js';

export class LbSubsystem implements Subsystem {
  readonly name = 'lb';
  readonly dp: Dataplane;
  private readonly state: LbState;
  readonly ingress: IngressSide;
  /** What a sync does to a namespace, and what each namespace holds (ns-sync.ts). */
  private readonly sync: NamespaceSync;
  /** The sync's namespaces and what each last applied, read-only here (acks, status, drift check). */
  private readonly ns: ReadonlyMap<NsKey, NsEntry>;
  private readonly appliedOf: Pick<WeakMap<NsEntry, LbDesired>, 'get'>;
  private readonly taskDesired: ReadonlyMap<string, TaskNsDesired>;
  private readonly drift: Pick<DriftTracker<NsEntry>, 'begin' | 'judge'>;
  /** Drain acks: active backend ids per applied desired state (core/lb/drained.ts). */
  private readonly drainIndex = new DrainIndex();
  private readonly sched: LbSchedule;
  private readonly schedCfg: LbScheduleConfig;
  private loop: ReconcileLoop<NsKey>;
  /** The one timer of the schedule (its nextDeadline: an overlay poll or the drift check). */
  private timer: Timer | null = null;
  /** Conntrack entries of backends an apply removed are deleted right after it (ct-flush.ts). */
  readonly ctFlush: StaleFlush;
  private badRecords = 0;

  constructor(private readonly o: LbSubsystemOptions) {
    this.dp = o.dataplane ?? createDataplane('auto', { exec: o.exec });
    this.state = new LbState(o.nodeName);
    this.ingress = new IngressSide(o, this.state, (id) => this.sync.netnsOf(id), () => this.feed({ type: 'changed', keys: [INGRESS_NS] }));
    this.ctFlush = new StaleFlush(o.conntrack ?? defaultFlusher(this.dp, o.exec), o.log, o.clock);
    this.sync = new NamespaceSync(o, this.dp, this.state, this.ingress, this.ctFlush);
    ({ ns: this.ns, appliedOf: this.appliedOf, taskDesired: this.taskDesired, drift: this.drift } = this.sync);
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
      run: (keys) => this.sync.run(keys),
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

  /** Counters for metrics (meshd_lb_*) and what the namespaces hold now (ns-sync.ts). */
  stats(): LbStats {
    return this.sync.stats();
  }

  /** Namespace applies that succeeded (`GET /v1/lb/status`). */
  get applies(): number {
    return this.sync.applies;
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
    this.sync.recheckHostMode();
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
