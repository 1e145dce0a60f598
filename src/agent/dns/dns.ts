/**
 * The agent's embedded DNS (issue 6): one DnsServer per node, answering at 127.0.0.11:53 inside
 * every local task namespace (dns-sandboxes.ts), from a DnsRegistry fed by the `endpoints` gossip
 * table of every network this node has joined.
 *
 * Feeding: each endpoint record (key = task id) becomes a task entry on its network — registry
 * network = the network's *name*, so `web.<network>` works with the name users know — healthy while
 * `running`, unhealthy (out of `tasks.x`, dnsrr, slot and SRV answers) while `draining`, gone on delete,
 * with its slot and target ports (`<slot>.<svc>` and SRV names; plan.ts `taskInputOf`); and
 * keeps the service entry (VIP or dnsrr, aliases) alive while at least one record of it exists
 * (a VIP service a little longer: see `remembered`).
 * A member declared dead or gone loses its entries (the gossip core purges them too; doing it here
 * as well keeps DNS right even if an event were missed). A periodic resync (default 10 s) and one
 * after every member join/alive rebuild the view from the tables themselves, so a node that blips
 * and returns never leaves names NXDOMAIN (moby#53141). Bad records are counted and dropped.
 * Resyncs run through the shared ReconcileLoop (coalesced) on the injected clock. Routes: routes.ts.
 *
 * Upstreams: config, else the host's /etc/resolv.conf as the agent sees it (in a lab host
 * namespace that is /etc/netns/<host-ns>/resolv.conf when it exists, by iproute2's convention).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Router } from '../../adapters/api/server.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import { DnsServer } from '../../adapters/dns-server/server.js';
import { parseResolvConf, type Upstream } from '../../adapters/dns-server/forwarder.js';
import type { NetnsSockets } from '../../adapters/netns-sockets.js';
import type { Timer, TimerClock } from '../../core/clock.js';
import { DnsRegistry } from '../../core/dns/registry.js';
import { ENDPOINT_TABLE, decodeEndpoint, type EndpointRecord } from '../../core/endpoints.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import type { Subsystem } from '../agent.js';
import type { GossipSubsystem } from '../gossip/gossip.js';
import { DEFAULT_SYNC_TIMEOUT_MS } from '../overlay/options.js';
import { waitForGossipSync } from '../overlay/sync-wait.js';
import { SandboxBinder } from './sandboxes.js';
import { qtypeName, taskInputOf, taskNetworks } from './plan.js';
import { registerDnsRoutes } from './routes.js';

export const DEFAULT_RESYNC_MS = 10_000;
/** A member joined or came back: its entries arrive by push-pull as events; a resync this much later is the safety net. */
export const REJOIN_RESYNC_MS = 1500;
/** Task namespaces are `<objectPrefix>t-<first 12 chars of the task id>` in both runtimes. */
export const TASK_ID_SHORT = 12;

export interface DnsSubsystemOptions {
  nodeName: string;
  /** Longest wait for the gossip sync before task namespaces are served anyway (ms), default DEFAULT_SYNC_TIMEOUT_MS (the overlay's). */
  syncTimeoutMs?: number;
  /** Object prefix of this node (lab: mlab-<lab>-<node>-, else meshd-); task namespaces are `<prefix>t-<id>`. */
  prefix: string;
  gossip: GossipSubsystem;
  /** Time, the resync timers and the sandbox scan loop. */
  clock: TimerClock;
  log: Logger;
  exec: Exec;
  /** Networks (names) of a local task by short id before its records exist (the worker's assignments). */
  assignedNetworks?: (shortId: string) => readonly string[] | undefined;
  /** Record TTL in seconds (default: the DNS component's, 5 s). */
  ttlSec?: number;
  /** Upstream resolvers; default: read from `resolvConfPath`. */
  upstreams?: readonly Upstream[];
  /** Default /etc/resolv.conf (config `dns.resolvConf`). */
  resolvConfPath?: string;
  forwardTimeoutMs?: number;
  /** Node-wide bound (split between the worker processes). */
  maxPendingForwards?: number;
  resyncMs?: number;
  /** Processes serving the DNS sockets, this one included (default 1; the agent passes config.dns.workers). */
  workers?: number;
  /** Largest UDP reply / advertised EDNS size, bytes (default the server's, 1232). */
  maxUdpPayload?: number;
  /** Bound on cached answers per process (default the server's, 10 000). */
  cacheMaxEntries?: number;
  /** Test seams. */
  netnsDir?: string;
  bind?: (netns: string) => Promise<NetnsSockets>;
}

interface Held {
  rec: EndpointRecord;
  owner: string;
  /** The table value as received (resync compares it byte for byte). */
  raw: string;
}

/**
 * A record's bytes as a string that differs whenever the bytes do (latin1: one char per byte), to skip
 * unchanged records on resync. Not UTF-8 text: a compact (binary) record has invalid sequences, which a
 * lossy decode maps to the same U+FFFD and so two different records could compare equal.
 */
const rawOf = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('latin1');

/** Upstreams from a resolv.conf file; none when it is absent or unreadable (forwarding then answers SERVFAIL). */
export function readUpstreams(path: string): Upstream[] {
  if (!existsSync(path)) return [];
  try {
    return parseResolvConf(readFileSync(path, 'utf8')).map((address) => ({ address, port: 53 }));
  } catch {
    return [];
  }
}

export class DnsSubsystem implements Subsystem {
  readonly name = 'dns';
  readonly registry = new DnsRegistry();
  readonly server: DnsServer;
  readonly sandboxes: SandboxBinder;
  readonly upstreams: readonly Upstream[];
  /** The resolv.conf the upstreams were read from. */
  readonly resolvConf: string;
  /** entry key (`<gossip network>\0<task id>`) → record. */
  private readonly held = new Map<string, Held>();
  /**
   * `${networkName}\0${taskName}` → how many held records name that task: remove() keeps the name while a twin
   * (a re-keyed task) still holds it, without scanning every held record per removal (O(1), not O(records)).
   */
  private readonly nameRefs = new Map<string, number>();
  /** `<network name>\0<service>` → entry keys of its records. */
  private readonly svcRefs = new Map<string, Set<string>>();
  /**
   * `<network name>\0<service>` → a VIP service whose last record went (scaled to 0, a stop-first
   * update of one replica, its only node lost). Its name keeps answering the VIP, as Docker's does,
   * because the LB keeps that VIP programmed to reject at once (lb-state.ts `known`): a client gets
   * "connection refused" at once instead of a forward upstream for a name that exists (which timed
   * out in the lab: chaos seed 13). Same lifetime as the LB's memory: until this node leaves the
   * network, or another service takes the name or the VIP. (Once the manager feeds service
   * definitions to agents, a deleted service can go at once; today the tables cannot tell.)
   */
  private readonly remembered = new Map<string, { gossipNet: string; network: string; name: string; vip: string; vip6?: string | undefined }>();
  /** Periodic and after-rejoin resync timers (cancelled at stop). */
  private readonly timers = new Set<Timer>();
  private loop: ReconcileLoop<'resync'> | undefined;
  private stopped = true;
  readonly counters = { applied: 0, removed: 0, badRecords: 0, resyncs: 0, ownerPurges: 0 };

  constructor(private readonly o: DnsSubsystemOptions) {
    this.resolvConf = o.resolvConfPath ?? '/etc/resolv.conf';
    this.upstreams = o.upstreams ?? readUpstreams(this.resolvConf);
    this.server = new DnsServer({
      registry: this.registry,
      listen: [],
      // Only sockets attached per sandbox are served; anything else is not one of ours.
      networksOf: () => undefined,
      ...(o.ttlSec !== undefined ? { ttlSec: o.ttlSec } : {}),
      upstreams: this.upstreams,
      ...(o.forwardTimeoutMs !== undefined ? { forwardTimeoutMs: o.forwardTimeoutMs } : {}),
      ...(o.maxPendingForwards !== undefined ? { maxPendingForwards: o.maxPendingForwards } : {}),
      ...(o.maxUdpPayload !== undefined ? { maxUdpPayload: o.maxUdpPayload } : {}),
      ...(o.cacheMaxEntries !== undefined ? { cacheMaxEntries: o.cacheMaxEntries } : {}),
      workers: o.workers ?? 1,
      onWorkerEvent: (event, detail) => o.log.warn(detail, event),
      clock: o.clock,
    });
    this.sandboxes = new SandboxBinder({
      taskNsPrefix: `${o.prefix}t-`,
      server: this.server,
      exec: o.exec,
      log: o.log,
      clock: o.clock,
      networksOf: (shortId) => this.networksOfTask(shortId),
      ...(o.netnsDir ? { netnsDir: o.netnsDir } : {}),
      ...(o.bind ? { bind: o.bind } : {}),
    });
    o.gossip.onEvent((ev) => this.onGossip(ev));
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.loop = new ReconcileLoop<'resync'>({
      clock: this.o.clock,
      run: async () => this.resync(),
      onError: (err) => this.o.log.error({ err }, 'dns: resync failed'),
    });
    await this.server.start();
    this.resync();
    this.arm();
    // Task namespaces get 127.0.0.11 once gossip has synced (every live peer of each of our networks has
    // shown up in its endpoint table), at most syncTimeoutMs after start: an agent restarted next to running
    // tasks (SIGKILL, upgrade) must not answer their lookups from a half-filled registry — a name whose
    // records had not arrived yet was forwarded upstream and came back NXDOMAIN, which resolvers cache.
    // Until then those namespaces have no server (as while the agent was down): lookups are refused, not
    // answered wrong. A node without seeds, or a first start with no tasks, is synced at once.
    void waitForGossipSync({
      gossip: this.o.gossip, clock: this.o.clock, self: this.o.nodeName, timeoutMs: this.o.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS,
      joined: () => this.o.gossip.hasJoined, stopped: () => this.stopped, hosted: () => new Set(this.o.gossip.core.networks()),
    }).then((ms) => {
      if (this.stopped) return;
      this.resync();
      this.sandboxes.start();
      if (ms > 0) this.o.log.info({ waitedMs: ms }, 'dns: gossip synced, serving task namespaces');
    });
    // Which UDP path serves the sandboxes (native batched addon, or dgram and why): said once at start.
    const udp = this.server.udpPath;
    this.o.log.info({ upstreams: this.upstreams, resolvConf: this.resolvConf, ttlSec: this.server.handler.ttlSec, workers: this.o.workers ?? 1, udpPath: udp.path, udpPathReason: udp.reason }, 'dns ready');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
    await this.loop?.stop();
    await this.sandboxes.stop();
    await this.server.close();
  }

  /** The periodic resync. */
  private arm(): void {
    this.resyncIn(this.o.resyncMs ?? DEFAULT_RESYNC_MS, () => this.arm());
  }

  /** A resync `ms` from now (through the loop: coalesced with any other due then); `then` after it is asked for. */
  private resyncIn(ms: number, then?: () => void): void {
    if (this.stopped) return;
    const t = this.o.clock.setTimer(ms, () => {
      this.timers.delete(t);
      this.loop?.mark('resync');
      then?.();
    });
    this.timers.add(t);
  }

  /**
   * Makes sure the embedded DNS answers inside task namespace `netns` (idempotent; false when it is not
   * one of this node's task namespaces or the bind failed — the background scan keeps retrying).
   */
  ensureSandbox(netns: string): Promise<boolean> {
    return this.sandboxes.ensure(netns);
  }

  /**
   * Drain-ack query (src/agent/drain/ack.ts): does the registry still serve `taskId` (key of the
   * `endpoints` table) as healthy on gossip network `network`? The registry is updated in the
   * gossip event handler itself, so the answer is current once the event was delivered.
   */
  servesTask(network: string, taskId: string): boolean {
    return this.held.get(`${network}\0${taskId}`)?.rec.state === 'running';
  }

  /**
   * Convergence-ack query (src/agent/drain/convergence.ts): the record the registry answers from
   * for `taskId` on `network` (updated in the gossip event handler itself, so current once the
   * event was delivered); undefined when not held.
   */
  heldRecord(network: string, taskId: string): EndpointRecord | undefined {
    return this.held.get(`${network}\0${taskId}`)?.rec;
  }

  /** Networks of a task by short id: its records' networks, else its assignment's (local tasks). */
  networksOfTask(shortId: string): readonly string[] | undefined {
    const fromRecords = taskNetworks([...this.held.values()].map((h) => h.rec), (r) => r.taskId.slice(0, TASK_ID_SHORT) === shortId);
    return fromRecords.length ? fromRecords : this.o.assignedNetworks?.(shortId);
  }

  private onGossip(ev: GossipEvent): void {
    if (this.stopped) return;
    switch (ev.type) {
      case 'create':
      case 'update':
        if (ev.table === ENDPOINT_TABLE) this.apply(ev.network, ev.key, ev.value, ev.owner);
        break;
      case 'delete':
        if (ev.table === ENDPOINT_TABLE) this.remove(`${ev.network}\0${ev.key}`);
        break;
      case 'member-dead':
      case 'member-left':
      case 'member-reaped':
        if (ev.name !== this.o.nodeName) this.purgeOwner(ev.name);
        break;
      case 'network-leave':
        if (ev.node !== this.o.nodeName) return;
        for (const [k, r] of this.remembered) if (r.gossipNet === ev.network) (this.remembered.delete(k), this.registry.removeService(r.network, r.name));
        break;
      case 'member-join':
      case 'member-alive':
        // Entries come back by push-pull as events; a resync shortly after is the safety net.
        this.resyncIn(REJOIN_RESYNC_MS);
        return;
      default:
        return;
    }
    this.sandboxes.refreshNetworks();
  }

  private apply(network: string, taskKey: string, value: Uint8Array, owner: string): void {
    const key = `${network}\0${taskKey}`;
    const d = decodeEndpoint(value);
    const bad = (reason: string): void => {
      this.counters.badRecords++;
      this.o.log.warn({ network, key: taskKey, owner, reason }, 'dns: endpoint record dropped');
      this.remove(key);
    };
    if (!d.ok) return bad(d.reason);
    const rec = d.record;
    if (rec.network !== network || rec.taskId !== taskKey) return bad('endpoint-key-mismatch');
    const prev = this.held.get(key);
    if (prev && (prev.rec.taskName !== rec.taskName || prev.rec.networkName !== rec.networkName || prev.rec.serviceName !== rec.serviceName)) this.remove(key);
    const now = this.o.clock.now();
    try {
      this.registry.upsertTask(taskInputOf(rec, owner), now);
      this.registry.upsertService({ name: rec.serviceName, network: rec.networkName, mode: rec.endpointMode, ...(rec.vip ? { vip: rec.vip } : {}), ...(rec.vip && rec.vip6 ? { vip6: rec.vip6 } : {}), aliases: rec.aliases }, now);
    } catch (e) {
      return bad(`registry: ${toMeshError(e).message}`);
    }
    if (!this.held.has(key)) {
      const nk = `${rec.networkName}\0${rec.taskName}`;
      this.nameRefs.set(nk, (this.nameRefs.get(nk) ?? 0) + 1);
    }
    this.held.set(key, { rec, owner, raw: rawOf(value) });
    const sk = `${rec.networkName}\0${rec.serviceName}`;
    this.remembered.delete(sk);
    for (const [k, r] of this.remembered) {
      if (r.network === rec.networkName && r.vip === rec.vip) (this.remembered.delete(k), this.registry.removeService(r.network, r.name));
    }
    let refs = this.svcRefs.get(sk);
    if (!refs) this.svcRefs.set(sk, (refs = new Set()));
    refs.add(key);
    this.counters.applied++;
  }

  private remove(key: string): void {
    const h = this.held.get(key);
    if (!h) return;
    this.held.delete(key);
    const { rec } = h;
    // Another record may name the same task on the same network (a re-keyed task): keep it then.
    const nk = `${rec.networkName}\0${rec.taskName}`;
    const named = (this.nameRefs.get(nk) ?? 1) - 1;
    if (named > 0) this.nameRefs.set(nk, named);
    else {
      this.nameRefs.delete(nk);
      this.registry.removeTask(rec.networkName, rec.taskName);
    }
    const sk = `${rec.networkName}\0${rec.serviceName}`;
    const refs = this.svcRefs.get(sk);
    refs?.delete(key);
    if (!refs || refs.size === 0) {
      this.svcRefs.delete(sk);
      if (rec.endpointMode === 'vip' && rec.vip) this.remembered.set(sk, { gossipNet: key.split('\0')[0]!, network: rec.networkName, name: rec.serviceName, vip: rec.vip, ...(rec.vip6 ? { vip6: rec.vip6 } : {}) });
      else this.registry.removeService(rec.networkName, rec.serviceName);
    } else {
      const r = this.held.get([...refs].at(-1)!)!.rec;
      this.registry.upsertService({ name: r.serviceName, network: r.networkName, mode: r.endpointMode, ...(r.vip ? { vip: r.vip } : {}), ...(r.vip && r.vip6 ? { vip6: r.vip6 } : {}), aliases: r.aliases }, this.o.clock.now());
    }
    this.counters.removed++;
  }

  private purgeOwner(node: string): void {
    let n = 0;
    for (const [k, h] of [...this.held]) if (h.owner === node) (this.remove(k), n++);
    n += this.registry.removeOwner(node);
    if (n > 0) {
      this.counters.ownerPurges++;
      this.o.log.info({ node, entries: n }, 'dns: dropped the entries of a departed node');
    }
  }

  /** Rebuilds the view from the gossip tables (adds what is missing, drops what is gone). */
  resync(): void {
    if (this.stopped) return;
    this.counters.resyncs++;
    const core = this.o.gossip.core;
    const seen = new Set<string>();
    for (const net of core.networks()) {
      for (const e of core.tableEntries(net, ENDPOINT_TABLE)) {
        const key = `${net}\0${e.key}`;
        seen.add(key);
        const h = this.held.get(key);
        if (h && h.owner === e.owner && h.raw === rawOf(e.value)) continue;
        this.apply(net, e.key, e.value, e.owner);
      }
    }
    for (const k of [...this.held.keys()]) if (!seen.has(k)) this.remove(k);
    this.sandboxes.refreshNetworks();
  }

  /** Networks a query is resolved on: the task's (any node's task), else every local task's, else all. */
  private networksFor(task: string | undefined): { networks: string[]; from: Record<string, unknown> | null } {
    const recs = [...this.held.values()];
    if (task) {
      const match = recs.filter((h) => h.rec.taskId === task || h.rec.taskName === task || (task.length >= 4 && h.rec.taskId.startsWith(task)));
      const ids = new Set(match.map((h) => h.rec.taskId));
      if (ids.size > 1) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task} is ambiguous (${[...ids].join(', ')})`);
      if (ids.size === 1) {
        const id = [...ids][0]!;
        const networks = taskNetworks(recs.map((h) => h.rec), (r) => r.taskId === id);
        return { networks, from: { task: id, taskName: match[0]!.rec.taskName, node: match[0]!.owner, networks } };
      }
      const local = task.length >= TASK_ID_SHORT ? this.o.assignedNetworks?.(task.slice(0, TASK_ID_SHORT)) : undefined;
      if (local) return { networks: [...local], from: { task, taskName: null, node: this.o.nodeName, networks: local } };
      throw new MeshError('MESHD_NOT_FOUND', `no task ${task} in the endpoint tables of ${this.o.nodeName}`);
    }
    const localNets = taskNetworks(recs.map((h) => h.rec), (r) => r.node === this.o.nodeName);
    return { networks: localNets.length ? localNets : this.registry.networks(), from: null };
  }

  routes(router: Router): void {
    registerDnsRoutes(router, this);
  }

  /** `GET /v1/dns/debug`: how `name` resolves as task `task` (else as this node). */
  async debug(name: string, qtype: number, task: string | undefined): Promise<Record<string, unknown>> {
    const { networks, from } = this.networksFor(task);
    const report = await this.server.debug(networks, name, qtype);
    return { node: this.o.nodeName, from, type: qtypeName(qtype), ...report };
  }

  /** `GET /v1/dns/stats`. */
  async stats(): Promise<Record<string, unknown>> {
    const server = await this.server.collectStats();
    const now = this.o.clock.now();
    return {
      node: this.o.nodeName,
      server,
      workers: { processes: this.o.workers ?? 1, pids: this.server.workerPids() },
      udp: this.server.udpReport(),
      // Per process, per socket: who read each socket's datagrams and what it answered (after collectStats).
      udpSockets: this.server.socketReport(),
      registry: { entries: this.registry.size(), generation: this.registry.generation, networks: this.registry.networks() },
      records: this.held.size,
      feed: { ...this.counters },
      upstreams: this.upstreams,
      resolvConf: this.resolvConf,
      ttlSec: this.server.handler.ttlSec,
      sandboxes: { ...this.sandboxes.view(now), binds: this.sandboxes.binds, bindFailures: this.sandboxes.bindFailures, lastBindMs: this.sandboxes.lastBindMs },
    };
  }

}
