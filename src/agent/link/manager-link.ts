/**
 * The agent's link to the cluster (dockerd's swarm component): cluster lifecycle on the
 * agent's socket (init, join, join tokens, leave), the manager and its control plane on
 * the node that initialized the cluster, and on every joined node a loop that polls the
 * dispatcher with the node's mTLS identity, hands the assignment list to the worker and
 * reports the worker's task states back.
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
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ApiClient } from '../../adapters/api/client.js';
import type { ApiResult, Router } from '../../adapters/api/server.js';
import type { Logger } from '../../adapters/logger.js';
import { hasNodeIdentity, loadNodeIdentity, type NodeIdentity } from '../../adapters/pki/files.js';
import type { Clock } from '../../core/clock.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import { parseBody } from '../../manager/model.js';
import {
  certificateRenewalDue, checkStoreConfig, hostsManagerStore, joinCluster, loadStoreConfig, managerSubsystem, ManagerPool,
  renewNodeCertificate, saveStoreConfig, STORE_CONFIG_FILE, type ManagerSubsystem, type StoreConfig,
} from '../../manager/link.js';
import type { ControlPlane } from '../../manager/control/index.js';
import type { RuntimeDetection } from '../../adapters/runtime/detect.js';
import type { NodeDescription } from '../../core/spec/runtime.js';
import type { Subsystem } from '../agent.js';
import type { GossipSubsystem } from '../gossip/gossip.js';

/** What the link needs of the worker (src/agent/worker/worker.ts). */
export interface AssignmentSink {
  setAssignments(list: unknown, opts?: { managed?: boolean }): unknown;
  tasksView(): Array<{ id: string; state: string; error: string | null; health?: string | null }>;
}

export interface ManagerLinkOptions {
  nodeName: string;
  advertiseAddr: string;
  /** The agent's data directory; the cluster identity goes to <dataDir>/cluster. */
  dataDir: string;
  clock: Clock;
  log: Logger;
  gossip: GossipSubsystem;
  worker: AssignmentSink;
  /** Dispatcher poll period (ms), default 1000. */
  pollMs?: number;
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
}

const initSchema = z.object({
  listenPort: z.number().int().min(0).max(65535).optional(),
  /** `{ kind: 'etcd', endpoints: [...] }` for a cluster several managers can share; default sqlite. */
  store: z.unknown().optional(),
}).strict();
const MANAGERS_FILE = 'managers.json';
/** Refresh the manager list every this many dispatcher rounds. */
const REFRESH_EVERY = 5;
const joinSchema = z.object({ token: z.string().min(1).max(256), addr: z.string().min(1).max(300) }).strict();
const leaveSchema = z.object({ force: z.boolean().default(false) }).strict();

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
  private timer: NodeJS.Timeout | undefined;
  private lastList = '';
  private lastIngress = '';
  private lastError: string | null = null;
  private polls = 0;
  private lastRenewCheck = 0;
  private busy = false;
  private description: NodeDescription | undefined;
  private describedAt = -Infinity;
  private lastDescribed = '';
  /** Consecutive detections that lost a runtime the node had (see describe()). */
  private losses = 0;

  constructor(private readonly o: ManagerLinkOptions) {
    this.dir = join(o.dataDir, 'cluster');
    o.gossip.onEvent((ev) => {
      if (ev.type.startsWith('member-')) this.control?.kick();
    });
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
      const { ControlPlane } = await import('../../manager/control/index.js'); // manager code only on manager nodes (issue 16 §3)
      const storeConfig = init?.store ?? loadStoreConfig(this.dir);
      const mgr = managerSubsystem({
        dataDir: this.dir, listenHost: this.o.advertiseAddr, listenPort: init?.listenPort ?? this.o.managerPort ?? 2377,
        storeConfig, advertiseAddr: this.o.advertiseAddr,
        ...(init ? { init: { nodeName: this.o.nodeName, advertiseAddr: this.o.advertiseAddr } } : {}),
        onInternalError: (e) => this.o.log.error({ err: e }, 'manager internal error'),
        configure: (m) => {
          this.control = new ControlPlane({
            manager: m,
            liveness: (host) => (host === this.o.nodeName ? 'alive' : this.o.gossip.core.member(host)?.state),
            stateAge: (host) => {
              const m = this.o.gossip.core.member(host);
              return m ? this.o.clock.now() - m.stateChangeAt : undefined;
            },
            downGraceMs: this.o.nodeDownGraceMs ?? 0,
            isLeader: () => m.isLeader(),
            onError: (e) => this.o.log.error({ err: e }, 'control plane step failed'),
            onResume: (ids) => this.o.log.info({ services: ids }, 'resumed rolling updates of the previous leader'),
          });
          this.control.register();
        },
        onLeadershipChange: (leader) => {
          this.leaderSince = leader ? Date.now() : null;
          this.o.log.info({ leader }, leader ? 'this manager is now the leader' : 'this manager is no longer the leader');
          this.control?.leadershipChanged(leader);
        },
        onLeadershipError: (e) => this.o.log.warn({ err: toMeshError(e).message }, 'leadership lost or campaign failed; campaigning again'),
      });
      await mgr.start();
      this.mgr = mgr;
      await this.control!.start();
      const port = mgr.port()!;
      this.localManager = `${this.o.advertiseAddr.includes(':') ? `[${this.o.advertiseAddr}]` : this.o.advertiseAddr}:${port}`;
    }
    this.identity = loadNodeIdentity(this.dir);
    const known = this.loadManagers();
    const addrs = [...(this.localManager ? [this.localManager] : []), ...known, this.identity.managerAddr];
    this.client = new ManagerPool({ caPem: this.identity.caPem, certPem: this.identity.certPem, keyPem: this.identity.keyPem }, addrs, {
      timeoutMs: 10_000,
      onSwitch: (from, to, why) => this.o.log.info({ from, to, why }, 'switched manager'),
    });
    this.arm(0);
    this.o.log.info({ nodeId: this.identity.nodeId, role: this.identity.role, manager: this.client.current, managers: this.client.addresses() }, 'cluster link active');
  }

  private loadManagers(): string[] {
    const path = join(this.dir, MANAGERS_FILE);
    if (!existsSync(path)) return [];
    try {
      const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0 && x.length < 300) : [];
    } catch (e) {
      // A damaged cache only costs the failover targets until the next refresh: say so and go on with the join address.
      this.o.log.warn({ err: (e as Error).message, path }, 'manager list unreadable; using the join address until refreshed');
      return [];
    }
  }

  /** Re-reads the manager list from the cluster (leader first) and caches it. */
  private async refreshManagers(pool: ManagerPool): Promise<void> {
    const list = await pool.call<Array<{ addr: string; status: string }>>('GET', '/v1/managers');
    const addrs = list.filter((m) => typeof m.addr === 'string').map((m) => m.addr);
    if (!addrs.length) return;
    // A manager node reads from itself; a worker keeps its current manager first (it works).
    const order = [...(this.localManager ? [this.localManager] : []), pool.current, ...addrs];
    pool.setAddresses(order.filter((a) => a === this.localManager || addrs.includes(a)));
    const text = JSON.stringify(addrs);
    const path = join(this.dir, MANAGERS_FILE);
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) writeFileSync(path, text, { mode: 0o600 });
  }

  private async deactivate(): Promise<void> {
    this.leaderSince = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.client = undefined;
    this.control?.stop();
    this.control = undefined;
    await this.mgr?.stop();
    this.mgr = undefined;
  }

  private arm(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.poll(), ms);
  }

  /** One dispatcher round: assignments → worker, worker states → manager. */
  private async poll(): Promise<void> {
    const client = this.client;
    if (!client || this.busy) return;
    this.busy = true;
    try {
      if (this.polls % REFRESH_EVERY === 0) await this.refreshManagers(client);
      const list = await client.call<unknown[]>('GET', '/v1/dispatcher/assignments');
      const text = JSON.stringify(list);
      if (text !== this.lastList) {
        this.o.worker.setAssignments(list, { managed: true });
        this.lastList = text;
      }
      // Health only for tasks with a check (`service ps`: running (healthy)).
      const tasks = this.o.worker.tasksView().map((t) => ({ id: t.id, state: t.state, error: t.error, ...(t.health ? { health: t.health } : {}) }));
      const description = await this.describe();
      const st = await client.call<{ role?: string | null }>('POST', '/v1/dispatcher/status', { tasks, ...(description ? { description } : {}) });
      if ((st.role === 'manager' || st.role === 'worker') && this.identity && st.role !== this.identity.role) {
        await this.changeRole(client);
        return;
      }
      await this.syncIngress(client);
      this.polls++;
      if (this.lastError) this.o.log.info('manager reachable again');
      this.lastError = null;
      await this.maybeRenew();
    } catch (e) {
      const msg = toMeshError(e).message;
      if (msg !== this.lastError) this.o.log.warn({ err: msg }, 'dispatcher round failed');
      this.lastError = msg;
    } finally {
      this.busy = false;
      // Re-arm for whichever link is current: a link re-activated (leave, then join) while this
      // round ran had its first round refused as busy, and would otherwise never poll.
      if (this.client) this.arm(this.client === client ? (this.o.pollMs ?? 1000) : 0);
    }
  }

  /**
   * This node's description, re-detected every `describeEveryMs` (cheap: one local request).
   * Sent on every report, so a new leader learns it on the next round; logged when it changes.
   * A lost runtime is re-checked on the next round before it is reported.
   */
  private async describe(): Promise<NodeDescription | undefined> {
    const detect = this.o.describeNode;
    if (!detect) return undefined;
    const now = this.o.clock.now();
    if (this.description && now - this.describedAt < (this.o.describeEveryMs ?? 10_000)) return this.description;
    const d = await detect();
    // Losing a runtime is confirmed by a second detection on the next round (a busy engine
    // may miss one short deadline); gaining one is taken at once.
    const lost = this.description?.runtimes.some((r) => !d.description.runtimes.includes(r)) ?? false;
    if (lost && this.losses++ === 0) return this.description;
    this.losses = 0;
    this.description = d.description;
    this.describedAt = now;
    const text = JSON.stringify(d.description);
    if (text !== this.lastDescribed) {
      this.o.log.info({ runtimes: d.description.runtimes, engine: d.description.engine ?? null, ...(d.dockerProblem ? { docker: d.dockerProblem } : {}) }, 'node runtimes');
      this.lastDescribed = text;
    }
    return d.description;
  }

  /** Hands new routing-mesh addresses (node sandbox, tasks' ingress interfaces) to the local LB. */
  private async syncIngress(client: ManagerPool): Promise<void> {
    if (!this.o.controlSocket) return;
    const cfg = await client.call<{ node: { ip: string; mac: string } | null; tasks: Record<string, { ip: string; mac: string }> }>('GET', '/v1/dispatcher/ingress');
    const text = JSON.stringify(cfg);
    if (text === this.lastIngress) return;
    const prev = this.lastIngress ? JSON.parse(this.lastIngress) as typeof cfg : { node: null, tasks: {} };
    const agent = new ApiClient({ socketPath: this.o.controlSocket, timeoutMs: 10_000 });
    if (cfg.node && JSON.stringify(cfg.node) !== JSON.stringify(prev.node)) await agent.call('PUT', '/v1/ingress', cfg.node);
    for (const [id, a] of Object.entries(cfg.tasks)) {
      if (JSON.stringify(prev.tasks[id]) !== JSON.stringify(a)) await agent.call('PUT', `/v1/ingress/tasks/${encodeURIComponent(id)}`, a);
    }
    this.lastIngress = text;
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

  /** Forwards a request to the manager and returns its answer as is (status and body). */
  private async forward(method: string, path: string, body: unknown): Promise<ApiResult> {
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
    };
  }

  routes(r: Router): void {
    r.add('GET', '/v1/cluster', () => ({ json: this.status() }));
    r.add('POST', '/v1/cluster/init', async (req) => {
      const b = parseBody(initSchema, 'cluster init', req.body ?? {});
      if (this.client || hasNodeIdentity(this.dir)) throw new MeshError('MESHD_CLUSTER_EXISTS', 'this node is already part of a cluster (netctl cluster leave first)');
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
      return { status: 201, json: this.status() };
    });
    r.add('POST', '/v1/cluster/join', async (req) => {
      const b = parseBody(joinSchema, 'cluster join', req.body);
      if (this.client || hasNodeIdentity(this.dir)) throw new MeshError('MESHD_CLUSTER_EXISTS', 'this node is already part of a cluster (netctl cluster leave first)');
      const joined = await joinCluster({ addr: b.addr, token: b.token, nodeName: this.o.nodeName, dataDir: this.dir, advertiseAddr: this.o.advertiseAddr, hostManager: true });
      if (joined.role === 'manager' && joined.store) saveStoreConfig(this.dir, joined.store);
      await this.activate();
      return { status: 201, json: this.status() };
    });
    r.add('GET', '/v1/cluster/join-token/:role', (req) => {
      const rotate = req.query.get('rotate') === '1';
      return this.forward(rotate ? 'POST' : 'GET', `/v1/cluster/join-token/${encodeURIComponent(req.params.role!)}${rotate ? '?rotate=1' : ''}`, undefined);
    });
    r.add('POST', '/v1/cluster/leave', async (req) => {
      const b = parseBody(leaveSchema, 'cluster leave', req.body ?? {});
      if (!hasNodeIdentity(this.dir) && !this.client) throw new MeshError('MESHD_NOT_READY', 'this node is not part of a cluster');
      if (this.mgr && !b.force) {
        throw new MeshError('MESHD_BAD_ARGUMENT', this.mgr.manager()?.store.backend === 'etcd'
          ? 'this node runs a manager of the cluster: leaving without removing it from the cluster first leaves a manager record behind; use --force'
          : 'this node runs the cluster\'s only manager: leaving deletes the cluster state; use --force');
      }
      await this.deactivate();
      this.o.worker.setAssignments([]);
      this.lastList = '';
      this.lastIngress = '';
      const id = this.identity;
      this.identity = undefined;
      rmSync(this.dir, { recursive: true, force: true });
      return { json: { left: true, nodeId: id?.nodeId ?? null } };
    });
    // The generic proxy: /v1/manager/<path> → manager /v1/<path> (up to 4 segments).
    const pats = ['/v1/manager/:a', '/v1/manager/:a/:b', '/v1/manager/:a/:b/:c', '/v1/manager/:a/:b/:c/:d'];
    for (const method of ['GET', 'POST', 'PUT', 'DELETE']) {
      for (const p of pats) {
        r.add(method, p, (req) => {
          const segs = ['a', 'b', 'c', 'd'].map((k) => req.params[k]).filter((s): s is string => s !== undefined);
          const qs = req.query.toString();
          return this.forward(method, `/v1/${segs.map(encodeURIComponent).join('/')}${qs ? `?${qs}` : ''}`, req.body);
        });
      }
    }
  }
}
