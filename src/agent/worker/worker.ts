/**
 * The worker: converges this node to its assignment list (Docker's agent/worker). It starts
 * tasks on a runtime, attaches them to overlay networks, publishes their endpoint records in
 * gossip (mesh.ts), and drains and stops tasks that are no longer assigned. What to start, stop,
 * adopt or fail is the pure plan in src/core/worker/converge.ts; this file is its shell.
 *
 * Converge runs through the shared ReconcileLoop (one run at a time; a change during a run is
 * followed by another; a run that throws is retried after `retryMs`), and a kick every `retryMs`
 * retries failed starts. Starting: join each attachment's network, add the local endpoint (the
 * sandbox appears), wait for the overlay, start the process, wait until it serves (start.ts),
 * publish 'running'. Stopping: publish 'draining', wait for the confirmed drain (`drain`,
 * src/agent/drain/wait.ts: every live member acked that its LB and DNS dropped the task, or the
 * waiter's timeout; without `drain` a fixed `drainMs`, default 2000 ms), stop with a grace
 * period, delete the records, remove the endpoint, leave networks no task uses.
 *
 * Health (health.ts): a task with a check is published `starting` until healthy; an unhealthy
 * task is removed like a scale-down and only then marked failed (`unhealthy: …`), which the
 * manager link reports so the manager replaces it.
 *
 * Restart safety: assignments are persisted (saved.ts); on start, tasks the runtimes still hold
 * are adopted when still assigned and stopped otherwise, and only then is the overlay activated.
 * Exits: a runtime's onExit (docker: the events stream; netns: its children) fails a running task
 * at once (a backend is published `draining` there and then) and kicks a converge that cleans it
 * up once every member dropped it (its sandbox refuses connections meanwhile); the list() poll
 * remains for netns tasks (adopted ones are not the agent's children). One DockerRuntime per
 * agent, made when first needed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Router } from '../../adapters/api/server.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import { DEFAULT_DOCKER_SOCKET } from '../../adapters/runtime/docker.js';
import type { Runtime, TaskInfo } from '../../adapters/runtime/types.js';
import type { Timer } from '../../core/clock.js';
import type { Assignment } from '../../core/assignments.js';
import type { EndpointRecord } from '../../core/endpoints.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { HealthStatus } from '../../core/health/policy.js';
import {
  adoptVerdict, drainsOnExit, exitedByPoll, exitError, exitVerdict, publishedState, shortId, toCure, toForget, toRemove, toStart,
  type TaskState,
} from '../../core/worker/converge.js';
import type { Subsystem } from '../agent.js';
import { waitServing } from './ready.js';
import { HealthShell } from './health.js';
import type { Held, TaskView, WorkerOptions } from './types.js';
import { TaskLogStreams } from './task-logs.js';
import { validateAssignments } from './plan.js';
import { TaskMesh } from './mesh.js';
import { heldByRuntimes, runtimeAttachmentsOf, StartLaps, taskSpecOf, untilServing, withMounts } from './start.js';
import { TaskFiles } from './task-files.js';
import { taskViewOf } from './view.js';
import { loadAssignments, saveAssignments } from './saved.js';
import { registerWorkerRoutes } from './routes.js';
import { StandaloneContainers } from './containers.js';
import { TaskRemoval } from './removal.js';
import { WorkerRuntimes } from './runtimes.js';
import { retuneTasks } from './mtu.js';

export { localKey } from './mesh.js';

export type { TaskState, TaskView, WorkerOptions } from './types.js';

export { DEFAULT_DRAIN_MS } from './removal.js';
export { DEFAULT_WHOAMI_IMAGE } from './start.js';
/** Period of the background converge that retries failed starts (ms). */
export const DEFAULT_RETRY_MS = 5000;
/** Views of forgotten tasks a worker keeps for `GET /v1/tasks/:task` (keepEnded): a few replacement rounds' worth. */
export const ENDED_KEPT = 64;
/** The worker converges as a whole: one loop key. */
const CONVERGE = 'converge';

export class WorkerSubsystem implements Subsystem {
  readonly name = 'worker';
  private desired = new Map<string, Assignment>();
  /** The manager's list (or the one PUT directly); `desired` is it plus the standalone containers. */
  private assigned: Assignment[] = [];
  /** Standalone containers (`netctl run`, containers.ts): one-shot, never restarted, kept after exit. */
  readonly standalone: StandaloneContainers;
  /** The assignments come from a manager, which owns restarts (see setAssignments). */
  private managed = false;
  private readonly tasks = new Map<string, Held>();
  /** The netns and Docker runtimes, their exit and health subscriptions (runtimes.ts). */
  private readonly runtimes: WorkerRuntimes;
  /** Tasks whose exit a runtime reported; the next converge cleans them up. */
  private readonly exited = new Set<string>();
  /** Exits reported while the task was starting (before it was published), by task id. */
  private readonly startExits = new Map<string, number | null>();
  /** The converge loop; created at start (a stopped loop stays stopped), null until activation. */
  private loop: ReconcileLoop<string> | null = null;
  private stopped = false;
  private retryTimer: Timer | null = null;
  /** Last views of tasks forgotten after the manager took them away, oldest first (keepEnded). */
  private readonly ended = new Map<string, TaskView>();
  /** The first converge polls the runtimes for exits itself (later polls: pollExits every retryMs). */
  private exitPollDue = true;
  /** An exit poll is running (pollExits: never two at once). */
  private polling = false;
  /** Drain, stop and detach of tasks taken away (removal.ts). */
  private readonly removal: TaskRemoval;
  /** Open `GET /v1/tasks/:task/logs` streams (closed at stop, so a follow never holds the agent up). */
  private readonly logStreams = new TaskLogStreams();
  /** Health checks of running tasks (health.ts). */
  private readonly health: HealthShell;
  private readonly mesh: TaskMesh;
  /** Secrets and configs of the tasks on this node (tmpfs, task-files.ts). */
  readonly files: TaskFiles;
  converges = 0;

  constructor(private readonly o: WorkerOptions) {
    this.mesh = new TaskMesh(o);
    this.standalone = new StandaloneContainers(o.dataDir, o.log);
    this.files = new TaskFiles({ root: o.filesDir ?? join(o.dataDir, 'task-files'), exec: o.exec, log: o.log, fetch: o.taskFiles });
    this.health = new HealthShell({ clock: o.clock, log: o.log, onChange: (id, st) => this.healthChanged(id, st) });
    this.runtimes = new WorkerRuntimes(o, this.health, (id, code) => this.exitedNow(id, code));
    this.removal = new TaskRemoval({
      clock: o.clock, log: o.log, drain: o.drain, drainMs: o.drainMs, stopGraceMs: o.stopGraceMs,
      runtimeOf: (a) => this.runtimeOf(a), heldOf: (ids) => this.heldOf(ids), publish: (h, st) => this.publish(h, st),
      detach: (a) => this.detachLocal(a), endHealth: (id) => this.health.end(id),
    });
  }

  private get retryMs(): number {
    return this.o.retryMs ?? DEFAULT_RETRY_MS;
  }

  private runtimeOf(a: Assignment): Runtime {
    return this.runtimes.of(a);
  }

  /**
   * A running task's check changed: healthy → it becomes a backend (and DNS answer); unhealthy →
   * the next converge drains it out of every node's LB and DNS, stops it and reports it failed.
   */
  private healthChanged(taskId: string, status: HealthStatus): void {
    const h = this.tasks.get(taskId);
    if (!h || h.state !== 'running') return;
    h.health = status;
    if (status === 'healthy') this.publishRunning(h);
    if (status === 'unhealthy') this.kick();
    this.statesChanged();
  }

  /** Publishes a running task: a backend unless its check has not passed yet (`starting`). */
  private publishRunning(h: Held): void {
    const state = publishedState(h.health);
    if (state === 'running') h.served = true;
    this.publish(h, state);
  }

  /** A runtime saw a task's process exit: a running task is failed at once; the converge cleans up. */
  private exitedNow(taskId: string, code: number | null): void {
    const h = this.tasks.get(taskId) ?? [...this.tasks.values()].find((x) => shortId(x.id) === shortId(taskId));
    const verdict = exitVerdict(h?.state);
    if (!h || verdict === 'ignore') return;
    if (verdict === 'during-start') {
      this.startExits.set(h.id, code);
      return;
    }
    this.failExited(h, exitError(code), code);
    this.kick();
  }

  private failExited(h: Held, error: string, code?: number | null): void {
    // Read before the state changes: a backend that died is withdrawn now, its sandbox kept until
    // every member acked the drop (reapExited; core/worker/converge.ts drainsOnExit says why).
    if (drainsOnExit(h)) {
      this.publish(h, 'draining');
      h.deadDrain = this.removal.withdrawDead(h);
    }
    h.state = 'failed';
    h.error = error;
    h.exitCode = code ?? null;
    this.standalone.ended(h.id, code ?? null);
    this.exited.add(h.id);
    this.o.log.warn({ task: h.id, ...(code !== undefined ? { code } : {}) }, 'task process exited');
    this.statesChanged();
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.assigned = loadAssignments(this.o.dataDir, this.o.log);
    this.standalone.load();
    this.refreshDesired();
    this.runtimes.start();
    await this.adopt();
    // A standalone container not found running ended while the agent was down: it stays, exited
    // (code unknown), until `container rm` — never started again (it is one-shot).
    for (const a of this.standalone.list()) {
      if (this.tasks.has(a.task.id)) continue;
      this.hold(a, 'failed', null, false).error = 'exited while the agent was down';
      this.standalone.ended(a.task.id, null);
    }
    // Activation waits for gossip to sync; do it in the background so the agent gets ready.
    void this.o.overlay.activate().then(() => {
      if (this.stopped) return;
      this.loop = new ReconcileLoop<string>({
        clock: this.o.clock,
        run: () => this.converge(),
        onError: (err) => this.o.log.error({ err }, 'converge failed'),
        // A converge that throws is retried on the same period as failed starts.
        config: { minBackoffMs: this.retryMs, maxBackoffMs: this.retryMs },
      });
      this.kick();
      this.armRetry();
    }, (e) => this.o.log.error({ err: e }, 'overlay activation failed'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.logStreams.closeAll();
    this.standalone.closeAll();
    this.health.stop();
    this.retryTimer?.cancel();
    this.retryTimer = null;
    // Tasks keep running: they are separate processes and are adopted at the next start.
    await this.loop?.stop();
    await this.runtimes.stop();
    await this.files.close();
  }

  /**
   * Replaces the node's whole assignment list (the manager link calls this). Throws 4xx on bad
   * input. `managed`: the list comes from a manager, which owns restarts (swarm's model): a task
   * that failed stays failed — reported, never restarted here — until the manager shuts it down
   * and places a replacement by its restart policy. Restarting it in place hid the failure from
   * the manager (the worker restarted a `docker kill`ed task before the next status report).
   * Lists handed in directly (PUT /v1/assignments, no manager) keep the retry in place.
   */
  setAssignments(list: unknown, opts: { managed?: boolean } = {}): { tasks: number } {
    const valid = validateAssignments(list);
    this.managed = opts.managed === true;
    this.assigned = valid;
    this.refreshDesired();
    this.noteAssigned();
    saveAssignments(this.o.dataDir, valid);
    this.kick();
    for (const l of this.assignmentListeners) l();
    return { tasks: valid.length };
  }

  /**
   * When each task desired running first appeared in a list (the worker's clock): a start's
   * `queuedMs` (types.ts StartTiming). Forgotten once the task is no longer desired.
   */
  private readonly assignedAt = new Map<string, number>();
  private noteAssigned(): void {
    const now = this.o.clock.now();
    for (const id of this.assignedAt.keys()) if (this.desired.get(id)?.desiredState !== 'running') this.assignedAt.delete(id);
    for (const [id, a] of this.desired) if (a.desiredState === 'running' && !this.assignedAt.has(id) && !this.tasks.has(id)) this.assignedAt.set(id, now);
  }

  /** Listeners told after every replacement of the assignment list (the policy subsystem: allow-from edits). */
  private readonly assignmentListeners: Array<() => void> = [];
  onAssignments(fn: () => void): void {
    this.assignmentListeners.push(fn);
  }

  /** Listeners told when task states may have changed (a start, an exit, a health change, a converge): the link reports them at once. */
  private readonly stateListeners: Array<() => void> = [];
  onTaskStates(fn: () => void): void {
    this.stateListeners.push(fn);
  }
  private statesChanged(): void {
    for (const l of this.stateListeners) l();
  }

  /** desired = the assigned list plus the standalone containers (ids never collide: both are manager-made). */
  private refreshDesired(): void {
    this.desired = new Map([...this.assigned, ...this.standalone.list()].map((a) => [a.task.id, a]));
  }

  /**
   * The standalone containers changed (container-routes.ts added or deleted one): converge now;
   * resolves once that converge ran (the container started or failed, or was stopped and removed).
   */
  async standaloneChanged(): Promise<void> {
    this.refreshDesired();
    this.kick();
    await this.idle();
  }

  assignments(): Assignment[] {
    return [...this.desired.values()];
  }

  /** Requests a converge (coalesced; none before the overlay is active or after stop). */
  kick(): void {
    if (!this.stopped) this.loop?.mark(CONVERGE);
  }

  /** Resolves when no converge is running or pending (tests, CLI). */
  async idle(): Promise<void> {
    await this.loop?.idle();
  }

  /**
   * Every retryMs: kicks a converge (retries failed starts) and polls exits (pollExits, beside the
   * converge loop, not in it; what it finds is reaped by the converge it kicks).
   */
  private armRetry(): void {
    if (this.stopped) return;
    this.retryTimer = this.o.clock.setTimer(this.retryMs, () => {
      this.retryTimer = null;
      this.kick();
      // What the poll finds (a task whose process is gone) is reaped by a converge it kicks then.
      void this.pollExits().then((found) => {
        if (found) this.kick();
      });
      this.armRetry();
    });
  }

  /**
   * Poll (fallback): runtimes without exit events, and netns tasks adopted after a restart. Listing
   * netns tasks is 1 + 2 per task processes: run inside a converge it held up a start that arrived
   * meanwhile (queued p99 up to 250 ms under churn in a loaded 10-node lab, issue 18), so it runs on
   * its own and only what it found waits for the converge. Safe beside one: it judges only tasks
   * that were `running` before the list and still are (a removal marks them `draining` first), as
   * an exit event would. Never two at once; a failure is logged, the next period tries again.
   * Resolves true when it marked a task exited.
   */
  private async pollExits(): Promise<boolean> {
    if (this.polling || this.stopped) return false;
    this.polling = true;
    try {
      const polled = [...this.tasks.values()].filter((h) => h.state === 'running' && (!this.runtimeOf(h.a).onExit || this.runtimeOf(h.a) === this.runtimes.netns));
      if (!polled.length) return false;
      const alive = new Set<string>();
      for (const rt of new Set(polled.map((h) => this.runtimeOf(h.a)))) {
        for (const i of await rt.list()) if (i.running) alive.add(shortId(i.id));
      }
      // Stopped while it listed (stop() does not wait for a poll beside the loop): judge nothing, publish nothing.
      if (this.stopped) return false;
      const gone = this.heldOf(exitedByPoll(polled, alive));
      for (const h of gone) this.failExited(h, exitError(null));
      return gone.length > 0;
    } catch (e) {
      this.o.log.error({ err: e }, 'exit poll failed');
      return false;
    } finally {
      this.polling = false;
    }
  }

  /** Adopts tasks the runtimes still hold and that are still assigned; stops the others. */
  private async adopt(): Promise<void> {
    const mayDocker = this.o.dockerRuntime || existsSync(this.o.dockerSocket ?? DEFAULT_DOCKER_SOCKET);
    const found = await heldByRuntimes(this.runtimes.netns, mayDocker ? this.runtimes.docker() : undefined, this.o.log);
    for (const { rt, info } of found) {
      const a = [...this.desired.values()].find((x) => shortId(x.task.id) === shortId(info.id));
      const verdict = adoptVerdict(a && { desiredState: a.desiredState, attachments: a.attachments.length, runtime: a.task.runtime ?? 'netns' }, info.running, rt.kind);
      if (a && verdict === 'adopt') {
        const h = this.hold(a, 'running', { ...info, id: a.task.id, name: a.task.name }, true);
        this.mesh.attach(a);
        h.health = this.health.begin(a.task.id, rt, h.info!, a.task.healthcheck);
        this.publishRunning(h);
        this.o.log.info({ task: a.task.id, netns: info.netns, pid: info.pid }, 'adopted running task');
      } else {
        this.o.log.info({ task: info.id, netns: info.netns }, 'stopping task that is no longer assigned (or not running)');
        await rt.stop(info.id, this.o.stopGraceMs ?? 5000).catch((e) => this.o.log.error({ err: e, task: info.id }, 'stop failed'));
      }
    }
  }

  private hold(a: Assignment, state: TaskState, info: TaskInfo | null, adopted: boolean): Held {
    const h: Held = { id: a.task.id, networks: a.attachments.map((x) => x.network.id), a, state, info, error: null, adopted };
    this.tasks.set(a.task.id, h);
    return h;
  }

  private heldOf(ids: readonly string[]): Held[] {
    return ids.map((id) => this.tasks.get(id)).filter((h): h is Held => h !== undefined);
  }

  /** One converge: each phase asks the plan (core/worker/converge.ts) with the states the last phase left. */
  private async converge(): Promise<void> {
    this.converges++;
    await this.reapExited();
    const going = this.heldOf(toRemove(this.desired, this.tasks.values()));
    if (going.length) await this.removal.remove(going);
    const sick = this.heldOf(toCure(this.tasks.values()));
    if (sick.length) await this.removal.remove(sick, new Map(sick.map((h) => [h.id, `unhealthy: ${this.health.reason(h.id) || 'health check failed'}`])));
    const plan = [...this.desired.values()].map((a) => ({ id: a.task.id, desiredState: a.desiredState }));
    for (const id of toStart(plan, this.tasks, this.managed, this.exited, this.standalone.ids())) {
      await this.startTask(this.desired.get(id)!);
      this.statesChanged();
    }
    this.republishBalancing();
    for (const id of toForget(this.desired, this.tasks.values())) {
      this.keepEnded(id);
      this.tasks.delete(id);
      this.removal.lastDrains.delete(id);
    }
    this.statesChanged();
  }

  /**
   * Keeps the last view of a task the manager took away (its state, error, drain outcome) for
   * `GET /v1/tasks/:task`: once the manager has the failure it replaces the task at once, and the
   * node forgot it within ~100 ms — too soon for anyone to read how it ended on this node. The
   * newest ENDED_KEPT are kept (the list, `GET /v1/tasks`, shows only what the node holds).
   */
  private keepEnded(id: string): void {
    const h = this.tasks.get(id);
    if (!h) return;
    this.ended.delete(id);
    this.ended.set(id, taskViewOf(id, h.a, h, undefined, this.removal.lastDrains.get(id), this.o.prefix));
    if (this.ended.size > ENDED_KEPT) this.ended.delete(this.ended.keys().next().value!);
  }

  /** The last view of a task this node held and forgot (by id or name), if still kept. */
  endedView(ref: string): TaskView | undefined {
    for (const v of this.ended.values()) if (v.id === ref || v.name === ref) return v;
    return undefined;
  }

  /**
   * A running task's balancing (the service's `lb`, the node's zone) comes from the manager's
   * current assignment, not from the one it started with: `service update --lb-algorithm` changes
   * no task, so the records of running tasks are published again with the new values.
   */
  private republishBalancing(): void {
    for (const h of this.tasks.values()) {
      const a = this.desired.get(h.id);
      if (h.state !== 'running' || !a || balancingOf(a) === balancingOf(h.a)) continue;
      const { lb: _lb, zone: _zone, ...rest } = h.a;
      h.a = { ...rest, ...(a.lb ? { lb: a.lb } : {}), ...(a.zone ? { zone: a.zone } : {}) };
      this.publishRunning(h);
    }
  }

  /**
   * A running task whose process is gone is marked failed (a backend's records turn `draining` at
   * once, failExited), the drain acks of the backends are awaited, then its namespace is removed
   * and its records deleted; the converge then starts it again (every retryMs at most), unless a
   * manager owns its restart.
   */
  private async reapExited(): Promise<void> {
    // The first converge polls exits itself (adopted tasks that died while the agent was down are
    // reaped before anything starts); later polls run beside the loop every retryMs (pollExits).
    if (this.exitPollDue) {
      this.exitPollDue = false;
      await this.pollExits();
    }
    const reaped = this.heldOf([...this.exited]).filter((h) => h.state === 'failed');
    this.exited.clear();
    // Dead backends leave every node's LB and DNS BEFORE the runtime removes their sandbox (and
    // address): until then a connection to one is refused at once, never lost (drainsOnExit).
    await Promise.all(reaped.map((h) => h.deadDrain));
    for (const h of reaped) {
      delete h.deadDrain;
      // A standalone container is kept after it exits (output, exit code) until `container rm`.
      // Cleaned up: it has ended (a later shutdown from the manager neither stops it again nor
      // erases its exit error). A cleanup that failed is retried by the removal.
      if (!h.a.task.standalone) await this.runtimeOf(h.a).stop(h.id, 0).then(() => { h.ended = true; }, (e: unknown) => this.o.log.error({ err: e, task: h.id }, 'cleanup after exit failed'));
      this.detachLocal(h.a);
    }
  }

  private publish(h: Held, state: EndpointRecord['state']): void {
    this.mesh.publish(h.a, state, h.info?.exposed ?? []);
  }

  private async startTask(a: Assignment): Promise<void> {
    const held = this.hold(a, 'starting', null, false);
    this.startExits.delete(a.task.id);
    const rt = this.runtimeOf(a);
    const laps = new StartLaps(() => this.o.clock.now(), this.assignedAt.get(a.task.id));
    try {
      const spec = withMounts(taskSpecOf(a), await this.files.prepare(a));
      laps.lap('files');
      this.mesh.attach(a);
      // Only its networks' sandboxes must be there (macvlan has none); not every entry churn handed in.
      await this.o.overlay.sandboxesSettled(a.attachments.filter((x) => x.network.driver !== 'macvlan').map((x) => x.network.id));
      laps.lap('sandboxes');
      const list = runtimeAttachmentsOf(a, this.o.overlay);
      const before = laps.timed(a.task.standalone ? (netns: string) => this.beforeStandalone(held, netns) : this.o.beforeApp);
      held.info = await rt.start(spec, list, before ? { beforeApp: before } : {});
      laps.lap('runtime');
      // /proc/<pid>/net/* is the whole namespace's socket table: it works for a container's pid too.
      await untilServing(a, held.info, this.o.readiness ?? (this.runtimes.isReal(rt) ? waitServing : undefined), this.o.readyTimeoutMs ?? 10_000, this.o.log);
      laps.lap('ready');
      if (this.startExits.has(a.task.id) && a.task.standalone) {
        // A one-shot container may well finish before its start returns: that is its run, not a failed start.
        this.failExited(held, exitError(this.startExits.get(a.task.id)), this.startExits.get(a.task.id));
        this.detachLocal(a);
        return;
      }
      if (this.startExits.has(a.task.id)) {
        const code = this.startExits.get(a.task.id);
        throw new MeshError('MESHD_EXEC_FAILED', `task ${a.task.id} exited during start${code === null || code === undefined ? '' : ` with code ${code}`}`);
      }
      held.state = 'running';
      held.health = this.health.begin(a.task.id, rt, held.info, a.task.healthcheck);
      this.publishRunning(held);
      held.timing = laps.done();
      this.o.log.info({ task: a.task.id, netns: held.info.netns, pid: held.info.pid, ips: a.attachments.map((x) => x.ip), startMs: held.timing }, 'task running');
    } catch (e) {
      const err = toMeshError(e);
      held.state = 'failed';
      held.error = err.message;
      this.o.log.error({ err, task: a.task.id }, 'task start failed (retried later)');
      // Cleaned up: ended (a retry is a new held task; a managed one keeps its error until forgotten).
      await rt.stop(a.task.id, 0).then(() => { held.ended = true; }, () => undefined);
      this.detachLocal(a);
    }
  }

  /**
   * A standalone container is often a one-shot client (`netctl run ... wget http://web/`): its
   * first instruction must already reach services' VIPs. So its records go out as `starting`
   * before its process starts (the LB programs the VIPs in every local namespace it has records
   * for), and the start waits until the LB applied them.
   */
  private async beforeStandalone(held: Held, netns: string): Promise<void> {
    await this.o.beforeApp?.(netns);
    this.publish(held, 'starting');
    await this.o.lbSettled?.();
  }

  /** Deletes the task's records and local endpoints; leaves networks no task uses any more. */
  private detachLocal(a: Assignment): void {
    this.health.end(a.task.id);
    this.files.release(a.task.id);
    this.mesh.detach(a, this.tasks.values());
  }

  /**
   * The overlay's automatic MTU changed: running tasks' overlay interfaces follow (mtu.ts; one
   * `ip -batch` per task namespace). Resolves with what it did; never throws (failures are logged there).
   */
  async retuneMtu(): Promise<{ changed: number; failed: string[] }> {
    const tasks = [...this.tasks.values()].filter((h) => h.info !== null).map((h) => ({ a: h.a, netns: h.info!.netns }));
    const r = await retuneTasks(this.o.exec, tasks, (n) => this.o.overlay.mtuOf(n), this.o.log);
    this.o.log.info({ changed: r.changed, failed: r.failed.length }, 'running tasks follow the new overlay MTU');
    return r;
  }

  tasksView(): TaskView[] {
    const ids = new Set([...this.tasks.keys(), ...this.desired.keys()]);
    return [...ids].sort().map((id) => {
      const h = this.tasks.get(id);
      const a = h?.a ?? this.desired.get(id)!;
      const view = taskViewOf(id, a, h, this.desired.get(id), this.removal.lastDrains.get(id), this.o.prefix);
      return a.task.standalone ? { ...view, standalone: true, exitCode: h?.exitCode ?? null } : view;
    });
  }

  get nodeName(): string {
    return this.o.nodeName;
  }

  routes(router: Router): void {
    registerWorkerRoutes(router, this);
  }

  /** The state and runtime of a task this worker holds (routes: exec, logs). */
  held(id: string): { state: TaskState; runtime: Runtime } | undefined {
    const h = this.tasks.get(id);
    return h && { state: h.state, runtime: this.runtimeOf(h.a) };
  }

  /** Open log streams, closed at stop (a follow never holds the agent up). */
  get logStreamsOpen(): TaskLogStreams {
    return this.logStreams;
  }

}

/** What of an assignment goes into the endpoint records' balancing fields, as a comparable string. */
function balancingOf(a: Assignment): string {
  return JSON.stringify([a.lb ?? null, a.zone ?? null]);
}
