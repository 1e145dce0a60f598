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
 * Dead members. When gossip declares a node dead its table entries are deleted at once.
 * An agent that was SIGKILLed and restarts in a few seconds looks exactly like that, while
 * its tasks never stopped. Removals caused by a member's death (not by a graceful leave or
 * a delete by the owner) are therefore held for `deadGraceMs`, and the dead member stays
 * in the guard's allow-list for as long: if it comes back and republishes, nothing was
 * ever removed. The cost: for deadGraceMs, packets to a really dead node go nowhere.
 *
 * Progress for the LB. `programmed()` is what the last successful reconcile left in the
 * kernel (overlay-programmed.ts) and `onProgress` fires when it changes: the LB selects a new
 * remote backend only once its entries are there (core/lb/overlay-gate.ts), without waiting
 * for the overlay in its own apply loop.
 */
import type { Router } from '../../adapters/api/server.js';
import type { Logger } from '../../adapters/logger.js';
import type { Exec } from '../../adapters/exec.js';
import { NftVxlanGuard } from '../../adapters/firewall/vxlan-guard.js';
import { ipOverlay, type OverlayReconciler, type OverlayStatus } from '../../adapters/netlink/overlay.js';
import { OverlayService } from '../../adapters/netlink/service.js';
import type { Clock } from '../../core/clock.js';
import { ENDPOINT_TABLE, decodeEndpoint } from '../../core/endpoints.js';
import { MeshError } from '../../core/errors.js';
import type { GossipEvent, GossipNode } from '../../core/gossip/index.js';
import { fdbRows, sandboxRows } from '../../core/overlay/debug.js';
import { DEFAULT_VXLAN_PORT, type LocalEndpoint, type OverlayConfig, type OverlayNetwork, type RemoteEndpoint } from '../../core/overlay/model.js';
import { DEFAULT_OVERLAY_TIMERS, type OverlayEvent, type OverlayTimers } from '../../core/overlay/state.js';
import type { Subsystem } from '../agent.js';
import { ProgrammedView } from './programmed.js';

/** What the overlay and the worker use of the gossip subsystem (GossipSubsystem satisfies it). */
export interface GossipPort {
  readonly core: Pick<GossipNode, 'members' | 'member' | 'networks' | 'tableEntries' | 'networkNodes' | 'joinNetwork' | 'leaveNetwork' | 'tableSet' | 'tableDelete'>;
  onEvent(listener: (ev: GossipEvent) => void): void;
  /** Flushes what direct core calls queued (sends, events). */
  pump(): void;
}

export interface OverlaySubsystemOptions {
  nodeName: string;
  /** This node's underlay address (VXLAN local, endpoint nodeIp). */
  underlayIp: string;
  /** Namespace prefix for sandboxes (`<prefix>ov-<net>`). */
  prefix: string;
  gossip: GossipPort;
  clock: Clock;
  log: Logger;
  exec: Exec;
  /** Underlay MTU in bytes; default: read from the interface holding underlayIp, else 1500. */
  underlayMtu?: number;
  vxlanPort?: number;
  timers?: OverlayTimers;
  /** How long activate() waits for gossip to sync before reconciling anyway (ms). */
  syncTimeoutMs?: number;
  /** How long removals caused by a member's death are held back (ms). */
  deadGraceMs?: number;
  /** Test seam: a reconciler other than the iproute2/nft one. */
  reconciler?: OverlayReconciler;
}

export const DEFAULT_SYNC_TIMEOUT_MS = 10_000;
/** Covers an agent restart under the `local` and `lan` presets' failure detection. */
export const DEFAULT_DEAD_GRACE_MS = 15_000;

const ipOf = (addr: string): string => addr.replace(/:\d+$/, '');
const remoteKey = (network: string, key: string): string => `${network}/${key}`;

export class OverlaySubsystem implements Subsystem {
  readonly name = 'overlay';
  private service: OverlayService | null = null;
  private reconciler: OverlayReconciler | null;
  private config: OverlayConfig;
  private readonly networks = new Map<string, OverlayNetwork>();
  private readonly local = new Map<string, LocalEndpoint>();
  private readonly remote = new Map<string, RemoteEndpoint & { owner: string }>();
  /** remote key → time its removal takes effect (owner declared dead). */
  private readonly pendingRemoval = new Map<string, number>();
  /** member name → time it was declared dead. */
  private readonly deadAt = new Map<string, number>();
  private readonly bad = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | null = null;
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
  /** What successful reconciles left in the kernel (the LB's overlay gate reads it). */
  private readonly view: ProgrammedView;

  constructor(private readonly opts: OverlaySubsystemOptions) {
    this.config = {
      prefix: opts.prefix, hostNs: null, underlayIp: opts.underlayIp,
      underlayMtu: opts.underlayMtu ?? 1500, vxlanPort: opts.vxlanPort ?? DEFAULT_VXLAN_PORT,
    };
    this.reconciler = opts.reconciler ?? null;
    this.view = new ProgrammedView(this.config, opts.log);
    opts.gossip.onEvent((ev) => this.onGossip(ev));
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.opts.underlayMtu === undefined) this.config.underlayMtu = await this.readUnderlayMtu();
    this.reconciler ??= ipOverlay(this.opts.exec, this.config, new NftVxlanGuard(this.opts.exec, null));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.service?.stop();
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Overlay MTU for a network on this node (what task veths get). */
  mtuOf(n: OverlayNetwork): number {
    return n.mtu ?? this.config.underlayMtu - 50;
  }

  get prefix(): string {
    return this.config.prefix;
  }

  // ---- inputs from the worker ----
  defineNetwork(n: OverlayNetwork): void {
    this.networks.set(n.id, n);
    this.send({ type: 'network-define', network: n });
  }

  forgetNetwork(id: string): void {
    this.networks.delete(id);
    for (const k of [...this.remote.keys()]) if (k.startsWith(id + '/')) this.remote.delete(k);
    for (const k of [...this.pendingRemoval.keys()]) if (k.startsWith(id + '/')) this.pendingRemoval.delete(k);
    this.send({ type: 'network-forget', networkId: id });
  }

  addLocal(taskId: string, e: LocalEndpoint): void {
    this.local.set(taskId, e);
    this.send({ type: 'local-add', taskId, endpoint: e });
  }

  removeLocal(taskId: string): void {
    this.local.delete(taskId);
    this.send({ type: 'local-remove', taskId });
  }

  /** Schedules a reconcile soon (e.g. after someone changed the kernel by hand). */
  kick(): void {
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

  /** True once activate() finished: gossip synced (or the bound passed) and removals are allowed. */
  get active(): boolean {
    return this.activated;
  }

  /**
   * The remote endpoints the kernel holds as of the last SUCCESSFUL reconcile, `network ip` →
   * `mac@nodeIp`; null before the first one (see overlay-programmed.ts). The LB selects a new
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
        if (r.ops > 0) this.opts.log.info({ ops: r.ops, processes: r.processes, reason, plan: r.plan }, 'overlay repaired');
      },
      onError: (e) => this.opts.log.error({ err: e }, 'overlay reconcile failed (will retry)'),
    });
    // Not running yet: handle() would otherwise reconcile with the first event alone (and, on a
    // restart, delete the sandbox whose local endpoint comes in the next event).
    s.stop();
    for (const n of this.networks.values()) s.handle({ type: 'network-define', network: n });
    for (const [taskId, e] of this.local) s.handle({ type: 'local-add', taskId, endpoint: e });
    for (const [key, e] of this.remote) s.handle({ type: 'remote-add', key, endpoint: e });
    s.handle({ type: 'members', underlayIps: this.memberIps() });
    this.service = s;
    s.start();
    const waited = await this.waitForSync();
    if (this.stopped) return;
    this.seedFromTables();
    this.additionsOnly = false;
    this.activated = true;
    s.handle({ type: 'members', underlayIps: this.memberIps() });
    this.opts.log.info({ waitedMs: waited, networks: this.networks.size, local: this.local.size, remote: this.remote.size }, 'overlay active');
  }

  private send(ev: OverlayEvent): void {
    this.service?.handle(ev);
  }

  private async waitForSync(): Promise<number> {
    const { gossip, clock } = this.opts;
    const t0 = clock.now();
    const deadline = t0 + (this.opts.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS);
    while (clock.now() < deadline && !this.stopped) {
      if (this.synced(gossip)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return Math.round(clock.now() - t0);
  }

  /** Joined the cluster (if we have seeds) and every live peer of our networks has entries here. */
  private synced(gossip: GossipPort): boolean {
    const members = gossip.core.members();
    const alive = new Set(members.filter((m) => m.state === 'alive' && m.name !== this.opts.nodeName).map((m) => m.name));
    if (!this.joined && alive.size === 0 && gossip.core.networks().length > 0) return false;
    for (const net of gossip.core.networks()) {
      if (!this.networks.has(net)) continue;
      const owners = new Set(gossip.core.tableEntries(net, ENDPOINT_TABLE).map((e) => e.owner));
      for (const n of gossip.core.networkNodes(net)) if (alive.has(n) && !owners.has(n)) return false;
    }
    return true;
  }

  private seedFromTables(): void {
    for (const net of this.opts.gossip.core.networks()) {
      for (const e of this.opts.gossip.core.tableEntries(net, ENDPOINT_TABLE)) this.onTable('create', net, e.key, e.value, e.owner);
    }
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
      case 'delete':
        if (ev.table === ENDPOINT_TABLE) this.onTable(ev.type, ev.network, ev.key, ev.value, ev.owner);
        return;
      default:
        if (!ev.type.startsWith('member-')) return;
    }
    const m = ev as { type: string; name: string };
    if (m.type === 'member-dead') this.deadAt.set(m.name, now);
    else if (m.type === 'member-join' || m.type === 'member-alive' || m.type === 'member-left') this.deadAt.delete(m.name);
    if (m.type === 'member-left') this.flushOwner(m.name);
    this.send({ type: 'members', underlayIps: this.memberIps() });
    this.armSweep();
  }

  private onTable(type: 'create' | 'update' | 'delete', network: string, key: string, value: Uint8Array, owner: string): void {
    if (owner === this.opts.nodeName) return;
    const k = remoteKey(network, key);
    if (type === 'delete') {
      const cur = this.remote.get(k);
      if (!cur) return;
      let died = this.deadAt.get(cur.owner);
      if (died === undefined && this.opts.gossip.core.member(cur.owner)?.state === 'dead') {
        died = this.opts.clock.now();
        this.deadAt.set(cur.owner, died);
      }
      if (died !== undefined) {
        this.pendingRemoval.set(k, died + (this.opts.deadGraceMs ?? DEFAULT_DEAD_GRACE_MS));
        this.armSweep();
        return;
      }
      this.remote.delete(k);
      this.send({ type: 'remote-remove', key: k });
      return;
    }
    const d = decodeEndpoint(value);
    if (!d.ok) {
      this.bad.set(d.reason, (this.bad.get(d.reason) ?? 0) + 1);
      this.opts.log.warn({ network, key, owner, reason: d.reason }, 'bad endpoint record dropped');
      return;
    }
    const r = d.record;
    if (r.node === this.opts.nodeName || r.network !== network) {
      if (r.network !== network) this.bad.set('endpoint-network', (this.bad.get('endpoint-network') ?? 0) + 1);
      return;
    }
    this.pendingRemoval.delete(k);
    const e = { network, ip: r.ip, mac: r.mac, nodeIp: r.nodeIp, owner };
    this.remote.set(k, e);
    this.send({ type: 'remote-add', key: k, endpoint: { network, ip: r.ip, mac: r.mac, nodeIp: r.nodeIp } });
  }

  private flushOwner(name: string): void {
    for (const [k, e] of this.remote) {
      if (e.owner === name && this.pendingRemoval.has(k)) {
        this.pendingRemoval.delete(k);
        this.remote.delete(k);
        this.send({ type: 'remote-remove', key: k });
      }
    }
  }

  /** Live members (alive or suspect) plus members dead for less than deadGraceMs. */
  memberIps(): string[] {
    const now = this.opts.clock.now();
    const grace = this.opts.deadGraceMs ?? DEFAULT_DEAD_GRACE_MS;
    const out = new Set<string>();
    for (const m of this.opts.gossip.core.members()) {
      const dead = this.deadAt.get(m.name);
      if (m.state === 'alive' || m.state === 'suspect' || (m.state === 'dead' && dead !== undefined && now < dead + grace)) out.add(ipOf(m.addr));
    }
    return [...out].sort();
  }

  /** Applies removals and guard changes whose grace has passed; re-arms for the next one. */
  private armSweep(): void {
    if (this.sweepTimer || this.stopped) return;
    const grace = this.opts.deadGraceMs ?? DEFAULT_DEAD_GRACE_MS;
    const dues = [...this.pendingRemoval.values(), ...[...this.deadAt.values()].map((t) => t + grace)];
    if (dues.length === 0) return;
    const wait = Math.max(0, Math.min(...dues) - this.opts.clock.now()) + 10;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = null;
      const now = this.opts.clock.now();
      for (const [k, due] of this.pendingRemoval) {
        if (due > now) continue;
        this.pendingRemoval.delete(k);
        this.remote.delete(k);
        this.send({ type: 'remote-remove', key: k });
      }
      for (const [name, t] of this.deadAt) if (t + grace <= now) this.deadAt.delete(name);
      this.send({ type: 'members', underlayIps: this.memberIps() });
      this.armSweep();
    }, wait);
    this.sweepTimer.unref();
  }

  private async readUnderlayMtu(): Promise<number> {
    const r = await this.opts.exec.run('ip', ['-j', '-4', 'addr', 'show']);
    if (r.code !== 0) return 1500;
    const links = JSON.parse(r.stdout || '[]') as Array<{ mtu?: number; addr_info?: Array<{ local?: string }> }>;
    const l = links.find((x) => x.addr_info?.some((a) => a.local === this.opts.underlayIp));
    return l?.mtu ?? 1500;
  }

  // ---- API ----
  async status(): Promise<OverlayStatus & { remote: number; local: number; badRecords: Record<string, number>; lastError: unknown; active: boolean }> {
    const input = this.service?.input() ?? { networks: [], remote: [], members: this.memberIps() };
    const st = await this.reconciler!.status(input);
    return {
      ...st, remote: this.remote.size, local: this.local.size, badRecords: Object.fromEntries(this.bad),
      lastError: this.service?.lastError?.toJSON() ?? null, active: this.service !== null,
    };
  }

  routes(router: Router): void {
    router.add('GET', '/v1/overlay/status', async (r) => {
      const st = await this.status();
      const net = r.query.get('network') ?? undefined;
      const byName = net ? [...this.networks.values()].find((n) => n.name === net || n.id === net) : undefined;
      if (net && !byName) throw new MeshError('MESHD_NOT_FOUND', `network ${net} is not known on ${this.opts.nodeName}`);
      return {
        json: {
          node: this.opts.nodeName,
          active: st.active,
          drift: st.drift.length,
          lastError: st.lastError,
          badRecords: st.badRecords,
          guardAllow: st.desired.guardAllow,
          programmed: this.view.get()?.size ?? null,
          fdb: fdbRows(st.desired.state, st.actual, byName?.id),
          sandboxes: sandboxRows(st.desired.state, st.actual),
          strayHostLinks: st.actual.strayHostLinks,
        },
      };
    });
    router.add('POST', '/v1/overlay/reconcile', async () => {
      if (!this.service) throw new MeshError('MESHD_NOT_READY', 'overlay is not active yet (waiting for gossip to sync)');
      this.kick();
      await this.settled();
      return { json: { ok: true, report: this.service.lastReport } };
    });
  }
}
