/**
 * The agent's load balancer: from the `endpoints` gossip tables to the kernel.
 *
 * - VIP balancing: every LOCAL task namespace (a record on a non-ingress network owned by this
 *   node) gets the VipService set of all services on that task's networks, applied with the
 *   dataplane inside the task's namespace (output hook: the client's own sandbox picks the task).
 * - Routing mesh: once this node has an ingress address (`PUT /v1/ingress`), it hosts an ingress
 *   sandbox on the `ingress` overlay (lb-ingress-side.ts, lb-ingress.ts); published ports of services whose tasks
 *   are attached to `ingress` are balanced there, and the host namespace DNATs
 *   underlay:published → the sandbox. Task ingress attachments are requested per task
 *   (`PUT /v1/ingress/tasks/:task`; the manager will put them in assignments later); this
 *   subsystem plumbs them (ing0) and publishes their records on `ingress`, mirroring the task's
 *   running/draining state.
 *
 * Scheduling: changes mark namespaces dirty; a debounced, serialized loop applies one dataplane
 * transaction per dirty namespace. A failed apply is retried (the dataplane makes it a full
 * resync); every `checkMs` the kernel is read back and a namespace whose kernel drifted from the
 * desired state is fully resynced (the safety net).
 *
 * Overlay gate: a NEW remote backend is left out of a namespace's plan until this node's overlay
 * reports its FDB/neighbour entries programmed (core/lb/overlay-gate.ts, lb-gate.ts): otherwise a
 * connection DNATed to it in the 1-2 s before the overlay catches up is lost. The overlay's
 * progress events re-plan the namespaces holding a backend back; the apply loop itself never
 * waits for the overlay, and drains / removals are never gated. Status lists held backends.
 *
 * Restart: nothing is applied before the overlay is active (which waits for the worker's adoption
 * and gossip sync) and has finished its first reconcile: the kernel keeps the old rules
 * meanwhile, and the first apply per namespace is a full, atomic replace computed from the
 * re-synced tables.
 */
import type { Router } from '../../adapters/api/server.js';
import { createDataplane } from '../../adapters/dataplane/detect.js';
import type { ApplyResult, Dataplane } from '../../adapters/dataplane/types.js';
import { ENDPOINT_TABLE, INGRESS_NETWORK, decodeEndpoint, type EndpointRecord } from '../../core/endpoints.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import type { LbDesired } from '../../core/lb/model.js';
import type { Subsystem } from '../agent.js';
import { IngressSide } from './ingress-side.js';
import { gateContext, gatedIngress, gatedVipServices, heldForLog } from './gate.js';
import { newNsEntry, type LbStats, type LbSubsystemOptions, type NsEntry } from './types.js';
import { dropIngressConflicts, dropVipConflicts, hostPublishesOf, taskNetnsName } from './plan.js';
import { HostModePlumber } from './host.js';
import { LbState } from './state.js';
import { lbStatus, type LbNsStatus } from './status.js';

export type { LbStats, LbSubsystemOptions, NsEntry } from './types.js';

const RETRY_MS = 1000;

export class LbSubsystem implements Subsystem {
  readonly name = 'lb';
  readonly dp: Dataplane;
  private readonly state: LbState;
  private readonly ing: IngressSide;
  private readonly ns = new Map<string, NsEntry>();
  /** Drain acks: the desired state last applied with success per namespace entry. */
  private readonly appliedOf = new WeakMap<NsEntry, LbDesired>();
  private readonly dirty = new Set<string>();
  /** Namespaces whose apply is in flight, and a count of applies started per namespace (drift check). */
  private readonly applying = new Set<NsEntry>();
  private readonly applyGen = new WeakMap<NsEntry, number>();
  /** Full resyncs the periodic check started because the kernel differed from what was applied. */
  private driftResyncs = 0;
  /** What the last counted drift was (namespace, then the differences), for status and tests. */
  private lastDrift: string[] = [];
  private active = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private readonly hostPlumber: HostModePlumber;
  /** Tasks plumbed for host publish mode since the last periodic check. */
  private readonly hostAttached = new Set<string>();
  private readonly totals = { syncs: 0, fullResyncs: 0, failures: 0, totalSyncMs: 0, lastSyncMs: 0 };
  private badRecords = 0;
  applies = 0;

  constructor(private readonly o: LbSubsystemOptions) {
    this.dp = o.dataplane ?? createDataplane('auto', { exec: o.exec });
    this.state = new LbState(o.nodeName);
    this.ing = new IngressSide(o, this.state, (id) => this.netnsOf(id), () => this.mark('#ingress'));
    this.hostPlumber = new HostModePlumber(o.exec);
    o.gossip.onEvent((ev) => this.onGossip(ev));
    o.overlay.onProgress(() => this.onOverlayProgress());
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.ing.load();
    for (const net of this.o.gossip.core.networks()) {
      for (const e of this.o.gossip.core.tableEntries(net, ENDPOINT_TABLE)) this.onTable('create', net, e.key, e.value);
    }
    void this.waitActive();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.checkTimer) clearTimeout(this.checkTimer);
    this.timer = this.checkTimer = null;
    await this.running?.catch(() => undefined);
    // Rules stay in the kernel: tasks keep being balanced while the agent is away.
  }

  /**
   * Starts applying once the overlay is active (worker adopted, gossip synced) and its first
   * reconcile finished: from then on its programmed view is known (or, if that reconcile
   * failed, known to be unknown: nothing is gated), so the first full apply neither withholds
   * backends the kernel still serves nor selects ones the overlay has not programmed.
   */
  private async waitActive(): Promise<void> {
    while (!this.stopped && !(this.o.overlay.active && this.o.overlay.reconciledOnce)) await new Promise((r) => setTimeout(r, 100));
    if (this.stopped) return;
    this.active = true;
    this.o.log.info({ backend: this.dp.kind, local: this.state.localTasks().size }, 'lb active');
    this.markAll();
    this.armCheck();
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
    if (network === INGRESS_NETWORK) this.mark('#ingress');
    for (const [taskId, t] of this.state.localTasks()) if (t.networks.has(network)) this.mark(`t:${taskId}`);
    if (c.node === this.o.nodeName) {
      if (network !== INGRESS_NETWORK) this.mark('#host');
      if (type === 'create') this.ing.taskCreated(c.taskId);
      this.mark(`t:${c.taskId}`);
      if (this.ing.attaches(c.taskId)) this.mark('#ingress');
    }
  }

  /**
   * The overlay programmed (or dropped) remote endpoints: replan the namespaces holding a
   * backend back. Only those: a plan with nothing held does not depend on the overlay.
   */
  private onOverlayProgress(): void {
    for (const [k, e] of this.ns) if (e.held.length) this.mark(k);
  }

  // ---- scheduling ----
  private mark(k: string): void {
    this.dirty.add(k);
    this.schedule(this.o.debounceMs ?? 30);
  }

  private markAll(): void {
    for (const t of this.state.localTasks().keys()) this.dirty.add(`t:${t}`);
    for (const e of this.ns.values()) if (e.taskId) this.dirty.add(`t:${e.taskId}`);
    this.dirty.add('#ingress');
    this.dirty.add('#host');
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (!this.active || this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
    }, ms);
  }

  private kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      // Yield first: with nothing dirty (a timer armed by a mark whose key an earlier pass already
      // took) the loop below does not await, so without this it would finish — and reset
      // `running` — before the assignment above stores its promise: `running` then stayed set
      // for good and every later kick only set `again`. The LB stopped applying anything until
      // the agent restarted (seen in CI: a node's mesh and VIPs frozen, drains never acked).
      await Promise.resolve();
      do {
        this.again = false;
        const work = [...this.dirty];
        this.dirty.clear();
        for (const k of work) {
          try {
            if (k === '#ingress') await this.syncIngress();
            else if (k === '#host') await this.syncHostMode();
            else await this.syncTask(k.slice(2));
          } catch (e) {
            this.dirty.add(k);
            this.o.log.error({ err: e, what: k }, 'lb sync failed (retrying)');
          }
        }
      } while (this.again && !this.stopped);
      this.running = null;
      if (this.dirty.size) this.schedule(RETRY_MS);
    })();
  }

  /**
   * Drain-ack query (src/agent/drain/ack.ts): true when this node's kernel sends no NEW
   * connection to task `taskId`: in the state last APPLIED with success to each namespace it is
   * not an active backend (draining or absent); a namespace never applied yet counts by its
   * desired state (edge: kernel rules left from before an agent restart are not read back here).
   * Per namespace, so unrelated pending or failing work does not hold an ack back. Backend ids
   * are task ids on every network (`_network` is informative).
   */
  drained(_network: string, taskId: string): boolean {
    if (!this.active) return false;
    const active = (d: LbDesired): boolean => d.services.some((x) => x.backends.some((b) => b.id === taskId && b.state === 'active'))
      || d.ingress.some((x) => x.backends.some((b) => b.id === taskId && b.state === 'active'));
    for (const e of this.ns.values()) {
      if (active(this.appliedOf.get(e) ?? e.desired)) return false;
    }
    return true;
  }

  /** Resolves when nothing is dirty and no sync runs (tests). */
  async idle(): Promise<void> {
    while (this.running || this.timer) await (this.running ?? new Promise((r) => setTimeout(r, 10)));
  }

  private netnsOf(taskId: string): string {
    return this.o.taskNetns?.(taskId) ?? taskNetnsName(this.o.prefix, taskId);
  }

  private async applyNs(e: NsEntry): Promise<void> {
    this.applying.add(e);
    this.applyGen.set(e, (this.applyGen.get(e) ?? 0) + 1);
    try {
      const want = e.desired;
      e.last = await this.dp.apply(want, { netns: e.netns, ...(e.kind === 'host' ? { sysctls: false } : {}) });
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
    } finally {
      this.applying.delete(e);
    }
  }

  private async syncTask(taskId: string): Promise<void> {
    const t = this.state.localTasks().get(taskId);
    const key = `t:${taskId}`;
    if (!t) {
      const gone = this.ns.get(key);
      if (gone) {
        this.ns.delete(key);
        this.forgetNs(gone.netns);
      }
      return;
    }
    const e = this.ns.get(key) ?? newNsEntry(this.netnsOf(taskId), 'task', taskId);
    const perNetwork = [...t.networks].sort().map((network) => ({ network, services: this.state.vipServices(network) }));
    const { services, conflicts, held } = gatedVipServices(perNetwork, dropVipConflicts, this.gateOf(e), e.gate);
    e.netns = this.netnsOf(taskId);
    e.desired = { services, ingress: [] };
    e.conflicts = conflicts;
    e.held = held;
    this.noteHeld(key, e);
    this.ns.set(key, e);
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

  private noteHeld(_key: string, e: NsEntry): void {
    if (!e.held.length) {
      e.heldSince = null;
      return;
    }
    if (e.heldSince !== null) return;
    e.heldSince = this.o.clock.now();
    this.o.log.info({ netns: e.netns, held: heldForLog(e.held, this.o.overlay, this.state) }, 'lb: remote backends held back until the overlay programs them');
  }

  /** The dataplane keeps per-namespace sync state; make it forget a namespace that is gone. */
  private forgetNs(netns: string): void {
    this.dp.requestFullResync({ netns });
  }

  // ---- ingress (routing mesh; plumbing and configuration in lb-ingress-side.ts) ----
  private async syncIngress(): Promise<void> {
    if (!(await this.ing.prepare())) return;
    const { ingress, conflicts } = dropIngressConflicts(this.state.ingress());
    const key = '#ingress';
    const e = this.ns.get(key) ?? newNsEntry(this.ing.plumber.sbox, 'ingress', null);
    const gated = gatedIngress(ingress, this.gateOf(e), e.gate);
    e.desired = { services: [], ingress: gated.ingress };
    e.conflicts = conflicts;
    e.held = gated.held;
    this.noteHeld(key, e);
    this.ns.set(key, e);
    await this.applyNs(e);
    await this.ing.programHost(ingress);
  }

  // ---- host publish mode ----
  /** Plumbs local tasks that publish in host mode, then programs the node's own namespace. */
  private async syncHostMode(): Promise<void> {
    const local = this.state.networks().filter((n) => n !== INGRESS_NETWORK).flatMap((n) => this.state.records(n).filter((r) => r.node === this.o.nodeName));
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
    const prev = this.ns.get('#host');
    if (!prev && pubs.length === 0) return; // never had host-mode ports: leave the node's namespace alone
    // Host mode balances over this node's own tasks only: nothing to wait for in the overlay.
    const e = prev ?? newNsEntry('', 'host', null);
    e.desired = { services: [], ingress: pubs };
    this.ns.set('#host', e);
    await this.applyNs(e);
  }

  private count(r: ApplyResult): void {
    if (r.mode === 'noop') return;
    this.totals.syncs++;
    if (r.mode === 'full') this.totals.fullResyncs++;
    this.totals.lastSyncMs = r.durationMs;
    this.totals.totalSyncMs += r.durationMs;
  }

  /**
   * Counters for metrics (meshd_lb_*): transactions sent (noops not counted), of which full
   * resyncs; failed applies; last and total transaction wall time (ms); and what the namespaces
   * hold now: VIP/published-port frontends and active backends (summed over namespaces).
   */
  stats(): LbStats {
    let services = 0;
    let backends = 0;
    let heldBackends = 0;
    for (const e of this.ns.values()) {
      services += e.last?.frontends ?? 0;
      heldBackends += e.held.length;
      for (const s of e.desired.services) backends += s.vip ? s.ports.length * s.backends.filter((b) => b.state === 'active').length : 0;
      for (const g of e.desired.ingress) backends += g.backends.filter((b) => b.state === 'active' && (g.policy === 'cluster' || b.local)).length;
    }
    return { ...this.totals, driftResyncs: this.driftResyncs, lastDrift: this.lastDrift, namespaces: this.ns.size, services, backends, heldBackends, backend: this.dp.kind };
  }

  // ---- periodic drift check ----
  private armCheck(): void {
    if (this.stopped) return;
    this.checkTimer = setTimeout(() => {
      this.checkTimer = null;
      void this.check().finally(() => this.armCheck());
    }, this.o.checkMs ?? 10_000);
    this.checkTimer.unref();
  }

  /**
   * Drift is judged against what was last applied, and only for namespaces with no apply in
   * flight at any time during the read-back: none when the check began (one that writes the
   * kernel before our read and returns before our verdict looked like drift — kernel new,
   * applied old), none started since, none running now.
   */
  private async check(): Promise<void> {
    const busy = new Set(this.applying);
    const gen = new Map([...this.ns.values()].map((e) => [e, this.applyGen.get(e) ?? 0]));
    for (const [k, s] of await this.statusRows()) {
      const e = this.ns.get(k);
      if (!e || busy.has(e) || this.applying.has(e) || (this.applyGen.get(e) ?? 0) !== gen.get(e)) continue;
      if (s.drift.length === 0 && !s.error) continue;
      // Counted as drift only when the kernel was read and differs from what was applied; a failed
      // apply (e.g. a task namespace already gone) or an unreadable namespace resyncs uncounted.
      if (s.drift.some((d) => !d.startsWith('cannot read the kernel'))) {
        this.driftResyncs++;
        this.lastDrift = [`${s.netns}:`, ...s.drift];
      }
      this.o.log.warn({ netns: s.netns, drift: s.drift, error: s.error }, 'lb drift: full resync');
      this.forgetNs(s.netns);
      this.dirty.add(k);
    }
    if (this.ing.recheck()) this.dirty.add('#ingress');
    this.hostAttached.clear();
    this.dirty.add('#host');
    if (this.dirty.size) this.schedule(0);
  }

  private async statusRows(service?: string): Promise<Array<[string, LbNsStatus]>> {
    const out: Array<[string, LbNsStatus]> = [];
    const names = new Map<string, string>();
    for (const n of this.state.networks()) for (const r of this.state.records(n)) names.set(r.serviceId, r.serviceName);
    for (const [k, e] of this.ns) {
      const s = await lbStatus(this.dp, e, service, (id) => names.get(id), this.o.overlay.lastErrorMessage, this.appliedOf.get(e));
      if (s) out.push([k, s]);
    }
    return out;
  }

  routes(router: Router): void {
    router.add('GET', '/v1/lb/status', async (r) => {
      const service = r.query.get('service') ?? undefined;
      const rows = (await this.statusRows(service)).map(([, s]) => s);
      if (service && rows.length === 0 && !this.state.networks().some((n) => this.state.records(n).some((x) => x.serviceId === service || x.serviceName === service))) {
        throw new MeshError('MESHD_NOT_FOUND', `service ${service} is not known on ${this.o.nodeName}`);
      }
      return {
        json: {
          node: this.o.nodeName, backend: this.dp.kind, active: this.active, applies: this.applies, badRecords: this.badRecords, stats: this.stats(),
          ingress: this.ing.status(),
          namespaces: rows,
        },
      };
    });
    this.ing.routes(router);
  }
}
