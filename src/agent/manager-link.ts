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
 * The identity lives in <dataDir>/cluster; the node that ran `init` also keeps the
 * manager's store there (state.db). Joining as a second manager needs a shared store
 * (etcd), which this link does not set up yet: joins are worker joins.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ApiClient } from '../adapters/api/client.js';
import type { ApiResult, Router } from '../adapters/api/server.js';
import type { Logger } from '../adapters/logger.js';
import { hasNodeIdentity, loadNodeIdentity, type NodeIdentity } from '../adapters/pki/files.js';
import type { Clock } from '../core/clock.js';
import { MeshError, toMeshError } from '../core/errors.js';
import { parseBody } from '../manager/model.js';
import { certificateRenewalDue, joinCluster, managerSubsystem, ManagerClient, renewNodeCertificate, STORE_FILE, type ManagerSubsystem } from '../manager/index.js';
import { ControlPlane } from '../manager/control/index.js';
import type { Subsystem } from './agent.js';
import type { GossipSubsystem } from './gossip.js';

/** What the link needs of the worker (src/agent/worker.ts). */
export interface AssignmentSink {
  setAssignments(list: unknown): unknown;
  tasksView(): Array<{ id: string; state: string; error: string | null }>;
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
  /** Manager API port when this node initializes a cluster; default 2377. */
  managerPort?: number;
  /**
   * The agent's own control socket: the routing-mesh addresses the manager allocates for this
   * node are handed to the load balancer through its API (`PUT /v1/ingress...`). Unset: not done.
   */
  controlSocket?: string;
}

const initSchema = z.object({ listenPort: z.number().int().min(0).max(65535).optional() }).strict();
const joinSchema = z.object({ token: z.string().min(1).max(256), addr: z.string().min(1).max(300) }).strict();
const leaveSchema = z.object({ force: z.boolean().default(false) }).strict();

export class ManagerLink implements Subsystem {
  readonly name = 'manager-link';
  private readonly dir: string;
  private mgr: ManagerSubsystem | undefined;
  private control: ControlPlane | undefined;
  private client: ManagerClient | undefined;
  private identity: NodeIdentity | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastList = '';
  private lastIngress = '';
  private lastError: string | null = null;
  private polls = 0;
  private lastRenewCheck = 0;
  private busy = false;

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

  /** Starts what this node's identity calls for: the manager (if it holds the store) and the poll loop. */
  private async activate(init?: { listenPort?: number | undefined }): Promise<void> {
    const hostsManager = init !== undefined || existsSync(join(this.dir, STORE_FILE));
    if (hostsManager) {
      const mgr = managerSubsystem({
        dataDir: this.dir, listenHost: this.o.advertiseAddr, listenPort: init?.listenPort ?? this.o.managerPort ?? 2377,
        ...(init ? { init: { nodeName: this.o.nodeName, advertiseAddr: this.o.advertiseAddr } } : {}),
        onInternalError: (e) => this.o.log.error({ err: e }, 'manager internal error'),
        configure: (m) => {
          this.control = new ControlPlane({
            manager: m,
            liveness: (host) => (host === this.o.nodeName ? 'alive' : this.o.gossip.core.member(host)?.state),
            onError: (e) => this.o.log.error({ err: e }, 'control plane step failed'),
          });
          this.control.register();
        },
      });
      await mgr.start();
      this.mgr = mgr;
      await this.control!.start();
    }
    this.identity = loadNodeIdentity(this.dir);
    this.client = new ManagerClient(this.identity.managerAddr, { caPem: this.identity.caPem, certPem: this.identity.certPem, keyPem: this.identity.keyPem }, 10_000);
    this.arm(0);
    this.o.log.info({ nodeId: this.identity.nodeId, role: this.identity.role, manager: this.identity.managerAddr }, 'cluster link active');
  }

  private async deactivate(): Promise<void> {
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
      const list = await client.call<unknown[]>('GET', '/v1/dispatcher/assignments');
      const text = JSON.stringify(list);
      if (text !== this.lastList) {
        this.o.worker.setAssignments(list);
        this.lastList = text;
      }
      const tasks = this.o.worker.tasksView().map((t) => ({ id: t.id, state: t.state, error: t.error }));
      await client.call('POST', '/v1/dispatcher/status', { tasks });
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
      if (this.client === client) this.arm(this.o.pollMs ?? 1000);
    }
  }

  /** Hands new routing-mesh addresses (node sandbox, tasks' ingress interfaces) to the local LB. */
  private async syncIngress(client: ManagerClient): Promise<void> {
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

  private async maybeRenew(): Promise<void> {
    const now = Date.now();
    if (now - this.lastRenewCheck < 60_000 || !this.identity) return;
    this.lastRenewCheck = now;
    if (!certificateRenewalDue(this.identity, new Date(now), Math.random())) return;
    this.identity = await renewNodeCertificate(this.dir);
    this.client = new ManagerClient(this.identity.managerAddr, { caPem: this.identity.caPem, certPem: this.identity.certPem, keyPem: this.identity.keyPem }, 10_000);
    this.o.log.info('node certificate renewed');
  }

  private need(): ManagerClient {
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
    return {
      joined: !!id, nodeId: id?.nodeId ?? null, role: id?.role ?? null, managerAddr: id?.managerAddr ?? null,
      manager: !!this.mgr, managerPort: this.mgr?.port() ?? null, polls: this.polls, lastError: this.lastError,
    };
  }

  routes(r: Router): void {
    r.add('GET', '/v1/cluster', () => ({ json: this.status() }));
    r.add('POST', '/v1/cluster/init', async (req) => {
      const b = parseBody(initSchema, 'cluster init', req.body ?? {});
      if (this.client || hasNodeIdentity(this.dir)) throw new MeshError('MESHD_CLUSTER_EXISTS', 'this node is already part of a cluster (netctl cluster leave first)');
      try {
        await this.activate({ listenPort: b.listenPort });
      } catch (e) {
        await this.deactivate();
        throw e;
      }
      return { status: 201, json: this.status() };
    });
    r.add('POST', '/v1/cluster/join', async (req) => {
      const b = parseBody(joinSchema, 'cluster join', req.body);
      if (this.client || hasNodeIdentity(this.dir)) throw new MeshError('MESHD_CLUSTER_EXISTS', 'this node is already part of a cluster (netctl cluster leave first)');
      await joinCluster({ addr: b.addr, token: b.token, nodeName: this.o.nodeName, dataDir: this.dir, advertiseAddr: this.o.advertiseAddr, role: 'worker' });
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
        throw new MeshError('MESHD_BAD_ARGUMENT', 'this node runs the cluster\'s only manager: leaving deletes the cluster state; use --force');
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
