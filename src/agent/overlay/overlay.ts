/**
 * The agent's overlay subsystem: one OverlayService per node, fed from three sources —
 *   - the worker: network definitions and local endpoints (tasks this node runs);
 *   - gossip tables: remote endpoints (`endpoints` table of every network this node joined;
 *     records are validated with decodeEndpoint, bad ones are counted and never applied;
 *     our own node's records are ignored);
 *   - gossip membership: underlay addresses of live members, the VXLAN guard's allow-list.
 *
 * Restart safety. The service reconciles from the kernel, and its first reconcile applies
 * whatever it was told so far. If it ran before the worker re-adopted its tasks and before
 * gossip re-synced the tables, it would delete sandboxes and FDB entries that running tasks
 * use. So the service is created only in `activate()`, which the worker calls after
 * adoption; activate() first waits (bounded by `syncTimeoutMs`) until gossip has joined the
 * cluster and every live peer of each hosted network has shown up in its table.
 *
 * Dead members. Removals caused by a member's death are held for `deadGraceMs` (an agent
 * SIGKILLed and restarted in seconds looks dead while its tasks never stopped); that policy is
 * the pure RemoteTable (core/overlay/remotes.ts). This shell feeds it gossip events, runs a
 * timer at its `nextDeadline()`, and hands its actions to the OverlayService in one batch (the
 * service's reconcile loop coalesces them into one reconcile).
 *
 * The VXLAN guard. Its allow-list (live members plus members within their dead grace) has one
 * writer, OverlayGuard (guard.ts, paced: one `nft -f` a second at most, trailing edge); the overlay
 * reconcile only waits until the guard is in place (fail closed). A member change reaches the
 * overlay reconcile only when it changes what the overlay programs (a remote endpoint sits on that
 * member's address): an idle agent's cost per member change is O(1) and no `ip` process (issue 18 §3).
 *
 * Progress for the LB. `programmed()` is what the last successful reconcile left in the
 * kernel (programmed.ts) and `onProgress` fires when it changes: the LB selects a new
 * remote backend only once its entries are there (core/lb/overlay-gate.ts), without waiting
 * for the overlay in its own apply loop.
 */
import type { Router } from '../../adapters/api/server.js';
import { NftVxlanGuard } from '../../adapters/firewall/vxlan-guard.js';
import { IpOverlayKernel, OverlayReconciler, type OverlayStatus, type ReconcileReport } from '../../adapters/netlink/overlay.js';
import { OverlayService } from '../../adapters/netlink/service.js';
import { readLinkMtu } from '../../adapters/netlink/pmtu.js';
import type { Timer } from '../../core/clock.js';
import { ENDPOINT_TABLE } from '../../core/endpoints.js';
import { MeshError } from '../../core/errors.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import { DEFAULT_VXLAN_PORT, sandboxName, vxlanOverheadOf, type LocalEndpoint, type OverlayConfig, type OverlayNetwork } from '../../core/overlay/model.js';
import { overlayMtuOf, type MtuChange } from '../../core/overlay/mtu.js';
import { DEFAULT_DEAD_GRACE_MS, RemoteTable } from '../../core/overlay/remotes.js';
import { DEFAULT_OVERLAY_TIMERS, type OverlayEvent } from '../../core/overlay/state.js';
import type { Subsystem } from '../agent.js';
import { OverlayGuard, type OverlayGuardView } from './guard.js';
import { DEFAULT_OVERLAY_MTU, OverlayMtu, type OverlayMtuView } from './mtu.js';
import { DEFAULT_SYNC_TIMEOUT_MS, memberChange, type OverlaySubsystemOptions } from './options.js';
import { ProgrammedView } from './programmed.js';
import { registerOverlayRoutes } from './routes.js';
import { waitForGossipSync } from './sync-wait.js';

export { DEFAULT_DEAD_GRACE_MS } from '../../core/overlay/remotes.js';
export { DEFAULT_SYNC_TIMEOUT_MS, type GossipPort, type OverlaySubsystemOptions } from './options.js';

export class OverlaySubsystem implements Subsystem {
  readonly name = 'overlay';
  private service: OverlayService | null = null;
  private reconciler: OverlayReconciler | null = null;
  /** The one writer of the VXLAN guard's allow-list (paced); created in start(). */
  private guard: OverlayGuard | null = null;
  private config: OverlayConfig;
  private readonly networks = new Map<string, OverlayNetwork>();
  private readonly local = new Map<string, LocalEndpoint>();
  /** Remote endpoints from gossip with the dead-member grace (the policy; this is its shell). */
  private readonly remotes: RemoteTable;
  private sweepTimer: Timer | undefined;
  private sweepAt: number | undefined;
  private joined = false;
  private stopped = false;
  private activated = false;
  /**
   * Until gossip has synced after a (re)start, reconciles only add and repair (core/overlay/diff.ts
   * `additionsOnly`): nothing an adopted task uses is removed on partial knowledge, yet what changed
   * while the agent was down (a client or backend that appeared on another node) is programmed as
   * soon as gossip tells us, not after the sync wait — the adopted tasks are published at once and
   * must be able to answer (chaos seed 21: timeouts to a restarted node's tasks for 5 s).
   */
  private additionsOnly = true;
  reconciles = 0;
  /**
   * The member list last handed to the service (joined, and as a set), so a member event that leaves
   * it as it was (suspect ↔ alive, an address-less update) costs nothing, and one that changes it
   * triggers an overlay reconcile only when a remote endpoint sits on a changed address: under
   * flapping every agent sees every member's events — that made an idle agent's cost grow with N
   * (issue 18 §3).
   */
  private lastMembers: string | undefined;
  private lastMemberSet: ReadonlySet<string> = new Set();
  /** What successful reconciles left in the kernel (the LB's overlay gate reads it). */
  private readonly view: ProgrammedView;
  /** Automatic MTU: probes + policy; `config.underlayMtu` follows its decisions. */
  readonly mtu: OverlayMtu;

  constructor(private readonly opts: OverlaySubsystemOptions) {
    this.config = {
      prefix: opts.prefix, hostNs: null, underlayIp: opts.underlayIp,
      underlayMtu: opts.underlayMtu ?? 1500, vxlanPort: opts.vxlanPort ?? DEFAULT_VXLAN_PORT,
    };
    this.remotes = new RemoteTable({ nodeName: opts.nodeName, deadGraceMs: opts.deadGraceMs ?? DEFAULT_DEAD_GRACE_MS });
    this.view = new ProgrammedView(this.config, opts.log);
    this.mtu = new OverlayMtu({ ...DEFAULT_OVERLAY_MTU, ...opts.mtu }, {
      exec: opts.exec, clock: opts.clock, log: opts.log, overhead: vxlanOverheadOf(opts.underlayIp),
      peers: () => this.memberIps().filter((ip) => ip !== opts.underlayIp),
      ...(opts.underlayMtu === undefined ? { link: () => readLinkMtu(opts.exec, opts.underlayIp) } : {}),
      ...(opts.mtuProbe ? { probe: opts.mtuProbe } : {}),
    });
    // First listener: the desired state moves before anyone else (the worker's re-tune) hears of it.
    this.mtu.onChange((c) => {
      this.config.underlayMtu = c.to;
      this.kick();
    });
    opts.gossip.onEvent((ev) => this.onGossip(ev));
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.mtu.start(this.opts.underlayMtu ?? await readLinkMtu(this.opts.exec, this.opts.underlayIp));
    this.config.underlayMtu = this.mtu.underlay;
    if (this.reconciler) return;
    this.guard = new OverlayGuard({
      guard: this.opts.guard ?? new NftVxlanGuard(this.opts.exec, null), port: this.config.vxlanPort, clock: this.opts.clock, log: this.opts.log,
      ...(this.opts.guardPacer ? { pacer: this.opts.guardPacer } : {}),
    });
    const kernel = this.opts.kernel ?? new IpOverlayKernel(this.opts.exec, this.config.prefix, this.config.hostNs);
    this.reconciler = new OverlayReconciler(this.config, kernel, this.guard.gate());
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.service?.stop();
    await this.guard?.stop();
    this.mtu.stop();
    this.cancelSweep();
  }

  /** Overlay MTU for a network on this node (what task veths get): its `--mtu`, else the automatic one. */
  mtuOf(n: OverlayNetwork): number {
    return overlayMtuOf(this.config.underlayMtu, n.mtu, vxlanOverheadOf(this.config.underlayIp));
  }

  /** Called after the automatic MTU changed and the overlay's desired state follows it. */
  onMtuChange(listener: (c: MtuChange) => void): void {
    this.mtu.onChange(listener);
  }

  get prefix(): string {
    return this.config.prefix;
  }

  get nodeName(): string {
    return this.opts.nodeName;
  }

  // ---- inputs from the worker ----
  defineNetwork(n: OverlayNetwork): void {
    this.networks.set(n.id, n);
    this.send({ type: 'network-define', network: n });
  }

  forgetNetwork(id: string): void {
    this.networks.delete(id);
    this.remotes.handle({ type: 'network-forget', network: id }, this.opts.clock.now());
    this.send({ type: 'network-forget', networkId: id });
    this.applyRemotes();
  }

  addLocal(taskId: string, e: LocalEndpoint): void {
    this.local.set(taskId, e);
    this.send({ type: 'local-add', taskId, endpoint: e });
  }

  removeLocal(taskId: string): void {
    this.local.delete(taskId);
    this.send({ type: 'local-remove', taskId });
  }

  /** A network this node knows, by name or id (the debug API's filter). */
  findNetwork(nameOrId: string): OverlayNetwork | undefined {
    return [...this.networks.values()].find((n) => n.name === nameOrId || n.id === nameOrId);
  }

  /** Schedules a reconcile soon (e.g. after someone changed the kernel by hand). */
  kick(): void {
    this.service?.readBack();
    this.send({ type: 'members', underlayIps: this.memberIps() });
  }

  /**
   * Waits until a reconcile that includes everything handed in so far has run, and throws
   * its error if it failed (the worker must not attach a task to a sandbox that is not there).
   */
  async settled(): Promise<void> {
    const s = this.service;
    if (!s) throw new MeshError('MESHD_NOT_READY', 'overlay is not active yet');
    await s.settle(DEFAULT_OVERLAY_TIMERS.debounceMs + 100);
    if (s.lastError) throw s.lastError;
  }

  /**
   * What a task start waits for: at once when the sandboxes of `networkIds` are in place and stay
   * (OverlayService.sandboxesReady), else `settled()` — a start does not wait behind a paced reconcile
   * that only carries other nodes' entries.
   */
  async sandboxesSettled(networkIds: readonly string[]): Promise<void> {
    if (this.service?.sandboxesReady(networkIds.map((network) => ({ network, ns: sandboxName(this.prefix, network) })))) return;
    await this.settled();
  }

  /** True once activate() finished: gossip synced (or the bound passed) and removals are allowed. */
  get active(): boolean {
    return this.activated;
  }

  /** True once activate() created the service (reconciles run, possibly additions only). */
  get started(): boolean {
    return this.service !== null;
  }

  /**
   * The remote endpoints the kernel holds as of the last SUCCESSFUL reconcile, `network ip` →
   * `mac@nodeIp`; null before the first one (see programmed.ts). The LB selects a new
   * remote backend only once it is here.
   */
  programmed(): ReadonlyMap<string, string> | null {
    return this.view.get();
  }

  /** Bumped whenever `programmed()` changes. */
  get programmedVersion(): number {
    return this.view.version;
  }

  /** True once the first reconcile since activate() finished (successfully or not). */
  get reconciledOnce(): boolean {
    return this.view.reconciledOnce;
  }

  /** Message of the last reconcile's error, or null when it succeeded. */
  get lastErrorMessage(): string | null {
    return this.service?.lastError?.message ?? null;
  }

  /** What the last successful reconcile did (null before one). */
  get lastReport(): ReconcileReport | null {
    return this.service?.lastReport ?? null;
  }

  /** Called when `programmed()` changed, and after the first finished reconcile whatever its outcome. */
  onProgress(listener: () => void): void {
    this.view.onProgress(listener);
  }

  /**
   * Starts the service in additions-only mode, waits until gossip has synced (or syncTimeoutMs
   * passed), then allows removals and reconciles in full; idempotent.
   */
  async activate(): Promise<void> {
    if (this.service || this.stopped) return;
    const tracked = this.view.tracking(this.reconciler!);
    const modal = Object.create(tracked) as OverlayReconciler;
    modal.reconcile = (input, opts) => tracked.reconcile(input, { ...opts, additionsOnly: this.additionsOnly });
    const s = new OverlayService({
      reconciler: modal,
      clock: this.opts.clock,
      timers: this.opts.timers ?? DEFAULT_OVERLAY_TIMERS,
      onReconciled: (r, reason) => {
        this.reconciles++;
        // Programming what events asked for is routine (one line per endpoint change under churn): debug. A resync
        // or retry that had to change something found drift: info.
        if (r.ops > 0 && reason === 'event') this.opts.log.debug({ ops: r.ops, processes: r.processes, reads: r.reads, plan: r.plan }, 'overlay programmed');
        else if (r.ops > 0) this.opts.log.info({ ops: r.ops, processes: r.processes, reason, plan: r.plan }, 'overlay repaired');
      },
      onError: (e) => this.opts.log.error({ err: e }, 'overlay reconcile failed (will retry)'),
    });
    // Not started yet: the first reconcile sees all of this at once (handed in one by one to a
    // running service, a restart could delete the sandbox whose local endpoint comes next).
    for (const n of this.networks.values()) s.handle({ type: 'network-define', network: n });
    for (const [taskId, e] of this.local) s.handle({ type: 'local-add', taskId, endpoint: e });
    for (const [key, e] of this.remotes.entries()) s.handle({ type: 'remote-add', key, endpoint: e });
    this.lastMembers = undefined;
    this.sendMembers(s);
    this.service = s;
    s.start();
    const waited = await this.waitForSync();
    if (this.stopped) return;
    this.seedFromTables();
    this.additionsOnly = false;
    this.activated = true;
    this.sendMembers(s, true); // the guard's first write, then a full reconcile
    this.opts.log.info({ waitedMs: waited, networks: this.networks.size, local: this.local.size, remote: this.remotes.size }, 'overlay active');
  }

  private send(ev: OverlayEvent): void {
    this.service?.handle(ev);
  }

  /** Waits (on the injected clock) until gossip has synced, at most syncTimeoutMs; returns the ms waited. */
  private waitForSync(): Promise<number> {
    return waitForGossipSync({
      gossip: this.opts.gossip, clock: this.opts.clock, self: this.opts.nodeName, timeoutMs: this.opts.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS,
      joined: () => this.joined, stopped: () => this.stopped, hosted: () => new Set(this.networks.keys()),
    });
  }

  private seedFromTables(): void {
    const now = this.opts.clock.now();
    for (const net of this.opts.gossip.core.networks()) {
      for (const e of this.opts.gossip.core.tableEntries(net, ENDPOINT_TABLE)) {
        if (e.owner !== this.opts.nodeName) this.remotes.handle({ type: 'entry-set', network: net, key: e.key, owner: e.owner, value: e.value }, now);
      }
    }
    this.applyRemotes();
  }

  // ---- gossip ----
  private onGossip(ev: GossipEvent): void {
    const now = this.opts.clock.now();
    switch (ev.type) {
      case 'join-ok':
        this.joined = true;
        return;
      case 'create':
      case 'update':
        if (ev.table !== ENDPOINT_TABLE) return;
        this.remotes.handle({ type: 'entry-set', network: ev.network, key: ev.key, owner: ev.owner, value: ev.value }, now);
        break;
      case 'delete': {
        if (ev.table !== ENDPOINT_TABLE || ev.owner === this.opts.nodeName) return;
        const owner = this.remotes.owner(ev.network, ev.key);
        const ownerDead = owner !== undefined && this.opts.gossip.core.member(owner)?.state === 'dead';
        this.remotes.handle({ type: 'entry-delete', network: ev.network, key: ev.key, ownerDead }, now);
        break;
      }
      default:
        if (!ev.type.startsWith('member-')) return;
        if (ev.type === 'member-join') this.mtu.memberJoined();
        this.remotes.handle({ type: 'member', name: (ev as { name: string }).name, change: memberChange(ev.type) }, now);
    }
    this.applyRemotes();
  }

  /** Runs what the grace policy decided: one batch of service events (one reconcile), then re-arms its timer. */
  private applyRemotes(): void {
    let members = false;
    for (const a of this.remotes.drain()) {
      if (a.type === 'remote-add') this.send({ type: 'remote-add', key: a.key, endpoint: a.endpoint });
      else if (a.type === 'remote-remove') this.send({ type: 'remote-remove', key: a.key });
      else if (a.type === 'members-changed') members = true;
      else this.opts.log.warn({ network: a.network, key: a.key, owner: a.owner, reason: a.reason }, 'bad endpoint record dropped');
    }
    if (members && this.service) this.sendMembers(this.service);
    this.armSweep();
  }

  /**
   * Hands the member list on when it changed (always when `force`): to the guard (once active:
   * before gossip has synced the list is partial and the guard keeps what it had), and to the
   * service, which reconciles only when `force` or a remote endpoint sits on a changed address
   * (desiredNode drops endpoints of non-members); otherwise the list is only recorded.
   */
  private sendMembers(s: OverlayService, force = false): void {
    const ips = this.memberIps();
    const key = ips.join(',');
    if (!force && key === this.lastMembers) return;
    const prev = this.lastMemberSet;
    this.lastMembers = key;
    this.lastMemberSet = new Set(ips);
    if (this.activated) this.guard?.want(ips.filter((ip) => ip !== this.config.underlayIp));
    s.handle({ type: 'members', underlayIps: ips }, { reconcile: force || this.remoteOnChanged(prev, this.lastMemberSet) });
  }

  /** True when a remote endpoint's node address is in one set and not the other (O(remote endpoints)). */
  private remoteOnChanged(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
    for (const [, e] of this.remotes.entries()) if (a.has(e.nodeIp) !== b.has(e.nodeIp)) return true;
    return false;
  }

  /** Live members (alive or suspect) plus members dead for less than deadGraceMs. */
  memberIps(): string[] {
    return this.remotes.guardAllow(this.opts.gossip.core.members(), this.opts.clock.now());
  }

  /** Keeps one timer at the grace policy's next deadline. */
  private armSweep(): void {
    const due = this.stopped ? null : this.remotes.nextDeadline();
    if (due === null) return this.cancelSweep();
    if (this.sweepTimer && this.sweepAt === due) return;
    this.cancelSweep();
    this.sweepAt = due;
    // At least 1 ms: a timer that fires a hair early finds nothing due and re-arms, never spins.
    this.sweepTimer = this.opts.clock.setTimer(Math.max(1, due - this.opts.clock.now()), () => {
      this.sweepTimer = undefined;
      this.sweepAt = undefined;
      this.remotes.tick(this.opts.clock.now());
      this.applyRemotes();
    });
  }

  private cancelSweep(): void {
    this.sweepTimer?.cancel();
    this.sweepTimer = undefined;
    this.sweepAt = undefined;
  }

  // ---- API ----
  async status(): Promise<OverlayStatus & {
    remote: number; local: number; badRecords: Record<string, number>; lastError: unknown; active: boolean; mtu: OverlayMtuView | null;
    guard: OverlayGuardView | null;
    /** Reconciles run; of them, started from the last known state and also without the verify read (entry changes). */
    reconciles: { runs: number; fromKnown: number; modelled: number };
  }> {
    const input = this.service?.input() ?? { networks: [], remote: [], members: this.memberIps() };
    const st = await this.reconciler!.status(input);
    return {
      ...st, guard: this.guard?.view() ?? null, remote: this.remotes.size, local: this.local.size, badRecords: this.remotes.badRecords(),
      lastError: this.service?.lastError?.toJSON() ?? null, active: this.service !== null, mtu: this.mtu.view(),
      reconciles: { runs: this.service?.counters.runs ?? 0, ...this.reconciler!.counters },
    };
  }

  routes(router: Router): void {
    registerOverlayRoutes(router, this);
  }
}
