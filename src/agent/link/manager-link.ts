/**
 * The agent's link to the cluster (dockerd's swarm component): cluster lifecycle on the
 * agent's socket (init, join, join tokens, leave), the manager and its control plane on
 * the node that initialized the cluster, and on every joined node, with the node's mTLS
 * identity, a feed that hands the worker its assignment list as soon as the manager commits
 * a change to it (assignment-feed.ts: a long-poll, not a poll) and a dispatcher round every
 * `pollMs` that reports the worker's task states back (and pulls keys and ingress addresses) —
 * sooner when the worker says a state changed (REPORT_SOON_MS), as swarm's agent reports at once.
 *
 * netctl only ever talks to the local agent socket: `/v1/manager/...` is forwarded to the
 * manager over mTLS with this node's certificate (so a worker node gets the manager's 403
 * for manager-only routes, like `docker service ls` on a worker).
 *
 * The identity lives in <dataDir>/cluster; a node that hosts a manager also keeps its store
 * config there (store.json: etcd endpoints) or the embedded store itself (state.db).
 * `init` with an etcd store makes a cluster that more managers can join: a join with a
 * manager token gets the etcd endpoints in the join answer and runs a manager on the same
 * store, campaigning for leadership (src/manager/leadership.ts).
 *
 * Several managers: the link keeps every manager's API address (<dataDir>/cluster/
 * managers.json, from the join and refreshed from `GET /v1/managers`) and talks through a
 * ManagerPool — an unreachable manager is skipped, a follower's "not the leader" answer is
 * followed to the leader — so assignments, status reports and forwarded netctl calls carry
 * on through whichever manager leads. A manager node prefers its own manager for reads.
 *
 * The round runs through the shared ReconcileLoop (one round at a time, the next `pollMs` after
 * the last ended). Each activation gets its own loop; a re-activation (leave then join, or a role
 * change decided inside a round) stops the old loop without waiting for it — the new loop's first
 * round waits for the old round instead, so two rounds never overlap and the new link always polls
 * (the hand-written `busy` flag it replaces refused that first round; 91ecb2e). Routes: routes.ts.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiResult, Router } from '../../adapters/api/server.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { Logger } from '../../adapters/logger.js';
import { hasNodeIdentity, loadNodeIdentity, type NodeIdentity } from '../../adapters/pki/files.js';
import type { TimerClock } from '../../core/clock.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import {
  certificateRenewalDue, checkStoreConfig, hostsManagerStore, joinCluster, loadStoreConfig, ManagerPool,
  renewNodeCertificate, saveStoreConfig, STORE_CONFIG_FILE, type ManagerSubsystem, type StoreConfig,
} from '../../manager/link.js';
import type { ControlPlane } from '../../manager/control/index.js';
import type { RuntimeDetection } from '../../adapters/runtime/detect.js';
import type { Subsystem } from '../agent.js';
import type { GossipSubsystem } from '../gossip/gossip.js';
import { NodeDescriber } from './describe.js';
import type { ClusterGossipKeys } from './gossip-keys.js';
import { startLocalManager } from './local-manager.js';
import { loadManagerList, saveManagerList } from './managers-file.js';
import { IngressSync, type IngressAddresses } from './ingress-sync.js';
import { AssignmentFeed } from './assignment-feed.js';
import { registerLinkRoutes } from './routes.js';

/** What the link needs of the worker (src/agent/worker/worker.ts). */
export interface AssignmentSink {
  setAssignments(list: unknown, opts?: { managed?: boolean }): unknown;
  tasksView(): Array<{ id: string; state: string; error: string | null; health?: string | null }>;
  /** Told when task states may have changed: the link reports them without waiting for the next round. */
  onTaskStates?(fn: () => void): void;
}

export interface ManagerLinkOptions {
  nodeName: string;
  advertiseAddr: string;
  /** The agent's data directory; the cluster identity goes to <dataDir>/cluster. */
  dataDir: string;
  /** Time and the poll loop's timers. */
  clock: TimerClock;
  log: Logger;
  gossip: GossipSubsystem;
  worker: AssignmentSink;
  /** Dispatcher round period (ms), default 1000: status reports, keys, ingress (assignments are pushed: assignment-feed.ts). */
  pollMs?: number;
  /** How long the manager may hold an assignment watch request with nothing new (ms), default 10000. */
  assignmentWaitMs?: number;
  /** When this node runs a manager: how long a node stays dead in gossip before it is down (config `manager.nodeDownGraceMs`). */
  nodeDownGraceMs?: number;
  /** Manager API port when this node initializes a cluster; default 2377. */
  managerPort?: number;
  /**
   * The agent's own control socket: the routing-mesh addresses the manager allocates for this
   * node are handed to the load balancer through its API (`PUT /v1/ingress...`). Unset: not done.
   */
  controlSocket?: string;
  /**
   * Detects this node's runtimes (src/adapters/runtime/detect.ts); the description rides on
   * every status report. Unset: the node reports nothing (the manager assumes netns only).
   */
  describeNode?: () => Promise<RuntimeDetection>;
  /** Re-detect at most this often (ms), default 10000: a dockerd started later is picked up. */
  describeEveryMs?: number;
  /** The cluster's gossip keyring: made at init, taken at join, pulled from the manager (gossip-keys.ts). Unset: not handled. */
  gossipKeys?: ClusterGossipKeys;
}

/** Refresh the manager list every this many dispatcher rounds. */
const REFRESH_EVERY = 5;
/**
 * A changed task state is reported this soon (ms) instead of at the next round: the manager's rolling
 * update and `service ps` wait on it. Short, so the states one converge changes go in one report.
 */
const REPORT_SOON_MS = 20;

export class ManagerLink implements Subsystem {
  readonly name = 'manager-link';
  private readonly dir: string;
  private mgr: ManagerSubsystem | undefined;
  private control: ControlPlane | undefined;
  private client: ManagerPool | undefined;
  private localManager: string | undefined;
  /** Wall-clock ms this node's manager last became the leader (etcd); null when it is not. */
  private leaderSince: number | null = null;
  private identity: NodeIdentity | undefined;
  /** The dispatcher poll loop of the current activation. */
  private loop: ReconcileLoop<'poll'> | undefined;
  /** Resolves when the last stopped loop's round (if one ran) has ended. */
  private lastRound: Promise<void> = Promise.resolve();
  /** The assignment feed of the current activation (pushed by the manager; polled by the round when it cannot push). */
  private feed: AssignmentFeed | undefined;
  private readonly ingress: IngressSync;
  private lastError: string | null = null;
  /** The task states the manager last accepted (JSON): a state change reports sooner only when it differs. */
  private lastReport = '';
  private polls = 0;
  private lastRenewCheck = 0;
  /** This node's runtimes for the status reports (unset: nothing reported). */
  private readonly describer: NodeDescriber | undefined;

  constructor(private readonly o: ManagerLinkOptions) {
    this.dir = join(o.dataDir, 'cluster');
    this.ingress = new IngressSync(o.controlSocket);
    this.describer = o.describeNode && new NodeDescriber(o.describeNode, o.clock, o.log, o.describeEveryMs);
    o.gossip.onEvent((ev) => {
      if (ev.type.startsWith('member-')) this.control?.kick();
    });
    o.worker.onTaskStates?.(() => {
      if (this.loop && JSON.stringify(this.taskReport()) !== this.lastReport) this.loop.mark('poll', REPORT_SOON_MS);
    });
  }

  routes(router: Router): void {
    registerLinkRoutes(router, this);
  }

  async start(): Promise<void> {
    if (hasNodeIdentity(this.dir)) await this.activate();
  }

  async stop(): Promise<void> {
    await this.deactivate();
  }

  /** Starts what this node's identity calls for: the manager (if it holds a store) and the poll loop. */
  private async activate(init?: { listenPort?: number | undefined; store?: StoreConfig | undefined }): Promise<void> {
    const hostsManager = init !== undefined || hostsManagerStore(this.dir);
    this.localManager = undefined;
    if (hostsManager) {
      const started = await startLocalManager({
        dir: this.dir, nodeName: this.o.nodeName, advertiseAddr: this.o.advertiseAddr, listenPort: init?.listenPort ?? this.o.managerPort ?? 2377,
        store: init?.store ?? loadStoreConfig(this.dir), init: init !== undefined, gossip: this.o.gossip, gossipKeys: this.o.gossipKeys,
        clock: this.o.clock, downGraceMs: this.o.nodeDownGraceMs ?? 0, log: this.o.log, onLeader: (since) => { this.leaderSince = since; },
      });
      this.mgr = started.mgr;
      this.control = started.control;
      this.localManager = started.addr;
    }
    this.identity = loadNodeIdentity(this.dir);
    const known = loadManagerList(this.dir, this.o.log);
    const addrs = [...(this.localManager ? [this.localManager] : []), ...known, this.identity.managerAddr];
    this.client = new ManagerPool({ caPem: this.identity.caPem, certPem: this.identity.certPem, keyPem: this.identity.keyPem }, addrs, {
      timeoutMs: 10_000,
      onSwitch: (from, to, why) => {
        this.o.log.info({ from, to, why }, 'switched manager');
        this.feed?.redirect();
      },
    });
    this.startPolling(this.client);
    this.o.log.info({ nodeId: this.identity.nodeId, role: this.identity.role, manager: this.client.current, managers: this.client.addresses() }, 'cluster link active');
  }

  /** Re-reads the manager list from the cluster (leader first) and caches it. */
  private async refreshManagers(pool: ManagerPool): Promise<void> {
    const list = await pool.call<Array<{ addr: string; status: string }>>('GET', '/v1/managers');
    const addrs = list.filter((m) => typeof m.addr === 'string').map((m) => m.addr);
    if (!addrs.length) return;
    // A manager node reads from itself; a worker keeps its current manager first (it works).
    const order = [...(this.localManager ? [this.localManager] : []), pool.current, ...addrs];
    pool.setAddresses(order.filter((a) => a === this.localManager || addrs.includes(a)));
    saveManagerList(this.dir, addrs);
  }

  private async deactivate(): Promise<void> {
    this.leaderSince = null;
    this.stopPolling();
    this.client = undefined;
    this.control?.stop();
    this.control = undefined;
    await this.mgr?.stop();
    this.mgr = undefined;
  }

  /** A loop polling through `client`; its first round waits for the previous loop's last one. */
  private startPolling(client: ManagerPool): void {
    const prev = this.lastRound;
    const pollMs = this.o.pollMs ?? 1000;
    const loop: ReconcileLoop<'poll'> = new ReconcileLoop<'poll'>({
      clock: this.o.clock,
      run: async () => {
        await prev;
        await this.poll(client);
        loop.mark('poll', pollMs); // ignored once this loop is stopped (the next activation polls on its own)
      },
      // poll() catches its own errors (lastError); this is for a bug in it: retried with back-off.
      onError: (e) => this.o.log.error({ err: e }, 'dispatcher round threw'),
    });
    this.loop = loop;
    loop.mark('poll');
    const feed = new AssignmentFeed(client, { clock: this.o.clock, log: this.o.log, worker: this.o.worker, ...(this.o.assignmentWaitMs !== undefined ? { waitMs: this.o.assignmentWaitMs } : {}) });
    this.feed = feed;
    // After the previous activation's last round (it may still apply a list; the new feed's first answer comes after it).
    void prev.then(() => { if (this.feed === feed) feed.start(); });
  }

  /** Stops polling without waiting (a round may be the caller: a role change restarts the link from inside it). */
  private stopPolling(): void {
    if (!this.loop) return;
    const feedStopped = this.feed?.stop() ?? Promise.resolve();
    this.feed = undefined;
    const roundEnded = this.loop.stop();
    this.lastRound = Promise.all([roundEnded, feedStopped]).then(() => undefined);
    this.loop = undefined;
  }

  /** A task's secret and config payloads (mTLS, this node's own tasks only: file-routes.ts); for the worker. */
  async taskFiles(taskId: string): Promise<unknown> {
    if (!this.client) throw new MeshError('MESHD_NOT_READY', 'this node is not linked to a manager');
    return this.client.call('GET', `/v1/dispatcher/tasks/${encodeURIComponent(taskId)}/files`);
  }

  /** One dispatcher round: assignments → worker, worker states → manager. */
  private async poll(client: ManagerPool): Promise<void> {
    try {
      if (this.polls % REFRESH_EVERY === 0) await this.refreshManagers(client);
      await this.pullGossipKeys(client);
      // Pushed by the feed; fetched here only from a manager without the watch (older version).
      const feed = this.feed;
      if (feed?.mode === 'poll') feed.apply(await client.call<unknown[]>('GET', '/v1/dispatcher/assignments'));
      const tasks = this.taskReport();
      const description = await this.describer?.current();
      const st = await client.call<{ role?: string | null }>('POST', '/v1/dispatcher/status', { tasks, ...(description ? { description } : {}) });
      this.lastReport = JSON.stringify(tasks);
      if ((st.role === 'manager' || st.role === 'worker') && this.identity && st.role !== this.identity.role) {
        await this.changeRole(client);
        return;
      }
      await this.ingress.sync(() => client.call<IngressAddresses>('GET', '/v1/dispatcher/ingress'));
      this.polls++;
      if (this.lastError) this.o.log.info('manager reachable again');
      this.lastError = null;
      await this.maybeRenew();
    } catch (e) {
      const msg = toMeshError(e).message;
      if (msg !== this.lastError) this.o.log.warn({ err: msg }, 'dispatcher round failed');
      this.lastError = msg;
    }
  }

  /** The worker's task states as the status report carries them (health only for tasks with a check: `service ps` shows running (healthy)). */
  private taskReport(): Array<{ id: string; state: string; error: string | null; health?: string }> {
    return this.o.worker.tasksView().map((t) => ({ id: t.id, state: t.state, error: t.error, ...(t.health ? { health: t.health } : {}) }));
  }

  /**
   * Adopts the cluster's gossip keyring every round (a rotation step reaches every live node within
   * a round or two; gossip-keys.ts ROTATION_STEP_MS counts on it); the leader then takes the next step.
   */
  private async pullGossipKeys(client: ManagerPool): Promise<void> {
    if (!this.o.gossipKeys) return;
    const r = await client.call<{ keys?: string[] }>('GET', '/v1/gossip-keys');
    this.o.gossipKeys.take(r.keys, 'manager');
    await this.mgr?.manager()?.keyring.advance(this.o.gossipKeys.rotationPeriodMs);
  }

  /**
   * The cluster changed this node's role (`node promote` / `node demote`): renew the
   * certificate (it carries the role; a manager also learns the shared store), then restart
   * the link as the new role — a promoted node starts its manager on the shared store and
   * campaigns like any manager; a demoted one stops its manager (a leader thereby hands the
   * lease to another) and goes on as a worker. Its tasks are unaffected.
   */
  private async changeRole(pool: ManagerPool): Promise<void> {
    const from = this.identity?.role;
    await this.takeRenewal(pool, from, await renewNodeCertificate(this.dir, 10_000, pool.current));
  }

  /** Uses a renewed identity; restarts the link when the role in it changed (see changeRole). */
  private async takeRenewal(pool: ManagerPool, from: string | undefined, next: NodeIdentity & { store?: StoreConfig }): Promise<void> {
    if (next.role === from) {
      this.identity = next;
      pool.setCredentials({ caPem: next.caPem, certPem: next.certPem, keyPem: next.keyPem });
      return;
    }
    if (next.role === 'manager') {
      if (!next.store) throw new MeshError('MESHD_UNSUPPORTED', 'promoted to manager, but the cluster handed out no shared store to run a manager on');
      saveStoreConfig(this.dir, next.store);
    } else {
      rmSync(join(this.dir, STORE_CONFIG_FILE), { force: true });
    }
    this.o.log.info({ from, to: next.role }, next.role === 'manager' ? 'promoted to manager' : 'demoted to worker');
    await this.deactivate();
    await this.activate();
  }

  private async maybeRenew(): Promise<void> {
    const now = Date.now();
    if (now - this.lastRenewCheck < 60_000 || !this.identity) return;
    this.lastRenewCheck = now;
    if (!certificateRenewalDue(this.identity, new Date(now), Math.random())) return;
    const pool = this.client;
    if (!pool) return;
    await this.takeRenewal(pool, this.identity.role, await renewNodeCertificate(this.dir, 10_000, pool.current));
    this.o.log.info('node certificate renewed');
  }

  private need(): ManagerPool {
    if (!this.client) throw new MeshError('MESHD_NOT_READY', 'this node is not part of a cluster: run netctl cluster init or cluster join');
    return this.client;
  }

  /** One call to the cluster's managers through the link's pool (failover, leader redirects); other subsystems use it (peer: revocations). */
  managerCall<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return this.need().call<T>(method, path, body);
  }

  /** Forwards a request to the manager and returns its answer as is (status and body). */
  async forward(method: string, path: string, body: unknown): Promise<ApiResult> {
    const r = await this.need().raw(method, path, body);
    let json: unknown;
    try {
      json = r.body.length ? JSON.parse(r.body) : null;
    } catch {
      return { status: r.status, text: r.body };
    }
    return { status: r.status, json };
  }

  status(): Record<string, unknown> {
    const id = this.identity;
    const m = this.mgr?.manager();
    return {
      joined: !!id, nodeId: id?.nodeId ?? null, role: id?.role ?? null, managerAddr: this.client?.current ?? id?.managerAddr ?? null,
      manager: !!this.mgr, managerPort: this.mgr?.port() ?? null, leader: m ? m.isLeader() : null, leaderSince: this.leaderSince,
      store: m ? m.store.backend : null, managers: this.client?.addresses() ?? [], polls: this.polls, lastError: this.lastError,
      assignments: this.feed?.status() ?? null,
    };
  }

  /** `cluster init`: this node becomes the cluster's first manager (etcd store: more managers may join). */
  async init(b: { listenPort?: number | undefined; store?: unknown }): Promise<Record<string, unknown>> {
    this.refuseIfMember();
    const store = b.store === undefined ? undefined : checkStoreConfig(b.store);
    try {
      if (store?.kind === 'etcd') {
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        saveStoreConfig(this.dir, store);
      }
      await this.activate({ listenPort: b.listenPort, store });
    } catch (e) {
      await this.deactivate();
      if (!hasNodeIdentity(this.dir)) rmSync(join(this.dir, STORE_CONFIG_FILE), { force: true });
      throw e;
    }
    return this.status();
  }

  /** `cluster join` with a token at a manager's address. */
  async join(b: { token: string; addr: string }): Promise<Record<string, unknown>> {
    this.refuseIfMember();
    const joined = await joinCluster({ addr: b.addr, token: b.token, nodeName: this.o.nodeName, dataDir: this.dir, advertiseAddr: this.o.advertiseAddr, hostManager: true });
    // The ring before the link (and so before gossip speaks as a member): from now on, only the cluster's key.
    this.o.gossipKeys?.take(joined.gossipKeys, 'join');
    if (joined.role === 'manager' && joined.store) saveStoreConfig(this.dir, joined.store);
    await this.activate();
    return this.status();
  }

  /** `cluster leave`: stops the link (and a local manager with `force`), drops the tasks and the identity. */
  async leave(b: { force: boolean }): Promise<{ left: true; nodeId: string | null }> {
    if (!hasNodeIdentity(this.dir) && !this.client) throw new MeshError('MESHD_NOT_READY', 'this node is not part of a cluster');
    if (this.mgr && !b.force) {
      throw new MeshError('MESHD_BAD_ARGUMENT', this.mgr.manager()?.store.backend === 'etcd'
        ? 'this node runs a manager of the cluster: leaving without removing it from the cluster first leaves a manager record behind; use --force'
        : 'this node runs the cluster\'s only manager: leaving deletes the cluster state; use --force');
    }
    await this.deactivate();
    this.o.worker.setAssignments([]);
    this.ingress.reset();
    const id = this.identity;
    this.identity = undefined;
    rmSync(this.dir, { recursive: true, force: true });
    return { left: true, nodeId: id?.nodeId ?? null };
  }

  private refuseIfMember(): void {
    if (this.client || hasNodeIdentity(this.dir)) throw new MeshError('MESHD_CLUSTER_EXISTS', 'this node is already part of a cluster (netctl cluster leave first)');
  }

}
