/**
 * The manager's control plane: networks, services, tasks and the dispatcher, served on the
 * Manager's mTLS API, and the reconcile loop that drives the pure cores (scheduler,
 * orchestrator, rolling updates, IPAM). Every change — an API call, a node's status
 * report, a loop step — runs serialized (one at a time) on a fresh ControlState loaded
 * from the store and committed back, so the store is the single source of truth.
 *
 * The loop runs on events (API changes, status reports, gossip membership changes) and on
 * a periodic tick (update delays, restart delays, liveness grace). With several managers
 * on etcd only the leader (`isLeader`) runs it; the API still answers on every manager
 * (writes only on the leader, see Manager). The first step of every leadership term (and
 * of a restart) resumes the updates the store says were working (failover.ts); losing
 * leadership drops the in-memory update machines.
 */
import { MeshError, toMeshError } from '../../core/errors.js';
import type { RollingUpdate } from '../../core/orchestrator/index.js';
import { step } from './engine.js';
import { resumeUpdates, startStrandedTasks } from './failover.js';
import { registerRoutes } from './routes.js';
import type { ControlPlaneOptions } from './options.js';
import { registerClusterRoutes } from './cluster-routes.js';
import { dropRemovedNodesAttachments, registerAttachmentRoutes } from './attachments.js';
import { registerFileRoutes } from './file-routes.js';
import { AssignmentWatch, registerAssignmentRoutes } from './assignment-watch.js';
import { ControlState, newId } from './state.js';
import type { Memo } from './host.js';
import { CKEYS, INGRESS, INGRESS_DEF, type NetworkRecord } from './model.js';

export class ControlPlane {
  readonly updaters = new Map<string, RollingUpdate>();
  private chain: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private kicked = false;
  /** The next step is the first of a leadership term: resume working updates. */
  private resumePending = true;
  private since: number;
  stepCount = 0;
  /** Wakes nodes' assignment watches on commits that concern them (assignment-watch.ts). */
  readonly assignments: AssignmentWatch;
  /** Answers of the nodes' per-second rounds (routes.ts `memoized`), one per node and route. */
  readonly memos = new Map<string, Memo>();

  constructor(readonly o: ControlPlaneOptions) {
    this.since = this.now();
    this.assignments = new AssignmentWatch(() => this.store, (e) => {
      const err = toMeshError(e);
      this.o.onError?.(new MeshError(err.code, `assignment watch: ${err.message}`, err.details));
    });
  }

  now(): number {
    return (this.o.now ?? Date.now)();
  }
  get store() {
    return this.o.manager.store;
  }
  storeRevision(): Promise<number> {
    return this.store.revision();
  }

  /** Adds the routes to the manager's API (call before the manager listens). */
  register(): void {
    registerRoutes(this);
    registerClusterRoutes(this);
    registerAttachmentRoutes(this);
    registerFileRoutes(this, this.o.manager);
    registerAssignmentRoutes(this, this.assignments);
  }

  /**
   * Runs `fn` on a fresh state after every earlier change finished, then commits what it changed.
   *
   * Fencing: a change asked for while this manager leads (every API write — followers refuse
   * them before they get here — and every reconcile step) must still be the leader's when it
   * commits: if leadership ended meanwhile it fails with MESHD_NOT_LEADER (a read-only call
   * still answers), and its commit carries the term's fence, so a leader deposed without
   * noticing cannot write either; that refusal drops the change and makes the manager step
   * down. A change asked for on a follower (its start, a node's ingress-address allocation)
   * is written unfenced unless it leads by then, as before.
   */
  serialize<T>(fn: (st: ControlState) => T | Promise<T>): Promise<T> {
    const m = this.o.manager;
    const leading = (this.o.isLeader ?? (() => m.isLeader()))();
    const run = async (): Promise<T> => {
      const fence = m.fence();
      const st = await ControlState.load(this.store, this.now());
      const out = await fn(st);
      if (st.pending() && leading && !(this.o.isLeader ?? (() => m.isLeader()))()) throw await m.notLeaderError('this change');
      try {
        await st.commit(this.store, { fence });
      } catch (e) {
        m.deposedBy(e);
        throw e;
      }
      return out;
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Creates the built-in ingress network if the cluster has none; starts the loop. */
  async start(): Promise<void> {
    await this.serialize((st) => {
      if (st.networkByName(INGRESS)) return;
      const a = st.ipam.create({ name: INGRESS, subnet: INGRESS_DEF.subnet, gateway: INGRESS_DEF.gateway, vni: INGRESS_DEF.vni });
      const rec: NetworkRecord = { id: INGRESS_DEF.id, name: INGRESS, driver: 'overlay', subnet: a.subnet, gateway: a.gateway, vni: a.vni, attachable: false, ingress: true, createdAt: this.now() };
      st.putNetwork(rec);
    });
    const tick = this.o.tickMs ?? 500;
    this.timer = setInterval(() => this.kick(), tick);
    this.kick();
  }

  /** Stops the loop; waiting assignment watches answer now (a server closing waits for open requests). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    void this.assignments.stop();
  }

  /**
   * Leadership changed (etcd). Gaining it: the next step resumes updates and starts from a
   * fresh liveness grace (this manager's gossip view is complete, but a node that is absent
   * gets the grace period from now). Losing it: the update machines are another manager's now.
   */
  leadershipChanged(leader: boolean): void {
    this.updaters.clear();
    this.resumePending = true;
    if (leader) {
      this.since = this.now();
      this.kick();
    }
  }

  /** Asks for a reconcile step soon (coalesced: at most one waits behind a running one). */
  kick(): void {
    if (this.kicked || !this.timer) return;
    if (this.o.isLeader && !this.o.isLeader()) return;
    this.kicked = true;
    void this.serialize((st) => {
      this.kicked = false;
      if (this.o.isLeader && !this.o.isLeader()) return;
      this.stepCount++;
      if (this.resumePending) {
        this.resumePending = false;
        const ids = resumeUpdates(st, this.updaters, this.now(), newId);
        if (ids.length) this.o.onResume?.(ids);
      }
      startStrandedTasks(st);
      dropRemovedNodesAttachments(st);
      step(st, {
        now: this.now(), newId, updaters: this.updaters, liveness: this.o.liveness, selfId: this.o.manager.identity.nodeId,
        absentGraceMs: this.o.absentGraceMs ?? 15_000, since: this.since,
        downGraceMs: this.o.downGraceMs ?? 0, ...(this.o.stateAge ? { stateAge: this.o.stateAge } : {}),
      });
    }).catch((e: unknown) => {
      this.kicked = false;
      const err = toMeshError(e);
      // Leadership ended before the step ran: nothing was computed or dropped (the change is logged by the leadership).
      if (err.code === 'MESHD_NOT_LEADER' && err.details?.reason === 'not-leader') return;
      this.o.onError?.(err);
    });
  }
}

export { CKEYS };
export type { ControlPlaneOptions } from './options.js';
