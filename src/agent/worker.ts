/**
 * The worker: converges this node to its assignment list (Docker's agent/worker). It
 * starts tasks on a runtime, attaches them to overlay networks, publishes their endpoint
 * records in gossip, and drains and stops tasks that are no longer assigned.
 *
 * Converge is serialized: one run at a time; a change during a run marks the worker dirty
 * and another run follows. Starting a task: join the gossip network of each attachment,
 * define the network on the overlay and add the local endpoint (the sandbox appears),
 * wait for that reconcile, start the process, publish records (state 'running').
 * Stopping: republish records as 'draining', wait until the drain is confirmed, stop the
 * process with a grace period (established connections finish), delete the records, remove
 * the local endpoint (the sandbox goes with the last one), leave the gossip network when no
 * task of it is left.
 *
 * Confirmed drain (the agent wires `drain`, src/agent/drain-wait.ts; design in
 * src/core/drain/acks.ts): every live member of each of the task's networks acks in table
 * `drain-acks` once its LB dataplane applied the draining state and its DNS dropped the task;
 * the worker stops the task when all acked, or after the waiter's timeout (10 s default,
 * logged at warn and counted). Tasks stopping in one converge are drained together.
 * Without `drain` (unit tests, embedders) the worker falls back to a fixed `drainMs` sleep
 * (default 2000 ms, the time a table update needs to reach every node under the `local` and
 * `lan` presets).
 *
 * Health checks (worker-health.ts): a task with a check is published `starting` (on the overlay,
 * neither a backend nor a DNS answer) and republished `running` once healthy; an unhealthy task
 * is removed like a scale-down (records `draining`, confirmed drain, stop) and only then marked
 * failed with `unhealthy: …`, which the manager link reports so the manager replaces it.
 *
 * Restart safety: assignments are persisted in dataDir/assignments.json; on start, tasks
 * the runtimes still hold (task processes outlive the agent) are adopted when still
 * assigned and stopped otherwise, and only then is the overlay activated.
 *
 * Several networks per task: the runtimes plumb one interface per attachment (eth0, eth1, …
 * in assignment order; default route via the first). Exits: a runtime's onExit (docker: the
 * events stream; netns: its own children) marks a running task failed at once and kicks a
 * converge that cleans it up; the periodic list() poll remains only for netns tasks (adopted
 * netns processes are not the agent's children). One DockerRuntime (one Engine API client)
 * per agent, created when first needed.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Router } from '../adapters/api/server.js';
import { DEFAULT_DOCKER_SOCKET, DockerRuntime } from '../adapters/runtime/docker.js';
import { NetnsRuntime } from '../adapters/runtime/netns.js';
import { BRIDGE_NAME, sandboxName } from '../core/overlay/model.js';
import type { Attachment as RuntimeAttachment, Runtime, TaskInfo, TaskSpec } from '../adapters/runtime/types.js';
import type { Assignment } from '../core/assignments.js';
import { ENDPOINT_TABLE, INGRESS_NETWORK, encodeEndpoint, type EndpointRecord } from '../core/endpoints.js';
import { MeshError, toMeshError } from '../core/errors.js';
import type { Subsystem } from './agent.js';
import type { DrainResult } from './drain-wait.js';
import { waitServing } from './worker-ready.js';
import { HealthShell } from './worker-health.js';
import type { HealthStatus } from '../core/health/policy.js';
import type { TaskState, TaskView, WorkerOptions } from './worker-types.js';
import { TaskLogStreams } from './task-logs.js';
import { endpointRecord, overlayNetworkOf, programOf, validateAssignments, SHORT_ID_LEN } from './worker-plan.js';

/** The overlay's key of a task's endpoint on one network. */
export function localKey(taskId: string, networkId: string): string {
  return `${taskId} ${networkId}`;
}

export type { TaskState, TaskView, WorkerOptions } from './worker-types.js';

interface Held {
  a: Assignment;
  state: TaskState;
  info: TaskInfo | null;
  error: string | null;
  adopted: boolean;
  /** Health (null: no check) and whether it was ever published as a backend (then it is drained). */
  health?: HealthStatus | null;
  served?: boolean;
}

export const DEFAULT_DRAIN_MS = 2000;
export const DEFAULT_WHOAMI_IMAGE = 'meshd-busybox:test';

export class WorkerSubsystem implements Subsystem {
  readonly name = 'worker';
  private desired = new Map<string, Assignment>();
  /** The assignments come from a manager, which owns restarts (see setAssignments). */
  private managed = false;
  private readonly tasks = new Map<string, Held>();
  private readonly netns: Runtime;
  private dockerRt: Runtime | null = null;
  /** Tasks whose exit a runtime reported; the next converge cleans them up. */
  private readonly exited = new Set<string>();
  /** Exits reported while the task was starting (before it was published), by task id. */
  private readonly startExits = new Map<string, number | null>();
  private readonly unsubscribe: Array<() => void> = [];
  private running: Promise<void> | null = null;
  private dirty = false;
  private stopped = false;
  private ready = false;
  private timer: NodeJS.Timeout | null = null;
  /** Outcome of each task's last drain (task id → result), for tasksView. */
  private readonly lastDrains = new Map<string, DrainResult>();
  /** Open `GET /v1/tasks/:task/logs` streams (closed at stop, so a follow never holds the agent up). */
  private readonly logStreams = new TaskLogStreams();
  /** Health checks of running tasks (worker-health.ts). */
  private readonly health: HealthShell;
  converges = 0;

  constructor(private readonly o: WorkerOptions) {
    this.netns = o.netnsRuntime ?? new NetnsRuntime({ prefix: o.prefix, exec: o.exec, node: o.nodeName, logDir: join(o.dataDir, 'tasks') });
    this.health = new HealthShell({ clock: o.clock, log: o.log, onChange: (id, st) => this.healthChanged(id, st) });
  }

  private get file(): string {
    return join(this.o.dataDir, 'assignments.json');
  }

  /** The agent's one Docker runtime (one Engine API client, one events stream). */
  private docker(): Runtime {
    if (!this.dockerRt) {
      this.dockerRt = this.o.dockerRuntime ?? new DockerRuntime({
        prefix: this.o.prefix, exec: this.o.exec, node: this.o.nodeName, image: this.o.dockerWhoamiImage ?? DEFAULT_WHOAMI_IMAGE,
        socketPath: this.o.dockerSocket ?? DEFAULT_DOCKER_SOCKET, log: this.o.log,
        ...(this.o.dockerSandboxImage ? { sandboxImage: this.o.dockerSandboxImage } : {}),
      });
      this.watchExits(this.dockerRt);
    }
    return this.dockerRt;
  }

  private runtimeOf(a: Assignment): Runtime {
    return a.task.runtime === 'docker' ? this.docker() : this.netns;
  }

  private watchExits(rt: Runtime): void {
    const off = rt.onExit?.((taskId, code) => this.exitedNow(taskId, code));
    if (off) this.unsubscribe.push(off);
    const offHealth = this.health.watch(rt);
    if (offHealth) this.unsubscribe.push(offHealth);
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
  }

  /** Publishes a running task: a backend unless its check has not passed yet (`starting`). */
  private publishRunning(h: Held): void {
    const serving = h.health === null || h.health === undefined || h.health === 'healthy';
    if (serving) h.served = true;
    this.publish(h.a, serving ? 'running' : 'starting');
  }

  /** A runtime saw a task's process exit: a running task is failed at once; the converge cleans up. */
  private exitedNow(taskId: string, code: number | null): void {
    const h = this.tasks.get(taskId) ?? [...this.tasks.values()].find((x) => x.a.task.id.slice(0, SHORT_ID_LEN) === taskId.slice(0, SHORT_ID_LEN));
    if (h?.state === 'starting') {
      this.startExits.set(h.a.task.id, code);
      return;
    }
    if (!h || h.state !== 'running') return;
    h.state = 'failed';
    h.error = code === null ? 'task process exited' : `task process exited with code ${code}`;
    this.exited.add(h.a.task.id);
    this.o.log.warn({ task: h.a.task.id, code }, 'task process exited');
    this.kick();
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.desired = new Map(this.load().map((a) => [a.task.id, a]));
    if (this.unsubscribe.length === 0) this.watchExits(this.netns);
    await this.adopt();
    // Activation waits for gossip to sync; do it in the background so the agent gets ready.
    void this.o.overlay.activate().then(() => {
      this.ready = true;
      this.kick();
      this.arm();
    }, (e) => this.o.log.error({ err: e }, 'overlay activation failed'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.logStreams.closeAll();
    this.health.stop();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // Tasks keep running: they are separate processes and are adopted at the next start.
    await this.running?.catch(() => undefined);
    for (const off of this.unsubscribe.splice(0)) off();
    await this.dockerRt?.close?.();
    this.dockerRt = null;
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
    this.desired = new Map(valid.map((a) => [a.task.id, a]));
    this.save(valid);
    this.kick();
    return { tasks: valid.length };
  }

  /** Resolves when no converge is running or pending (tests, CLI). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private load(): Assignment[] {
    if (!existsSync(this.file)) return [];
    try {
      return validateAssignments(JSON.parse(readFileSync(this.file, 'utf8')));
    } catch (e) {
      this.o.log.error({ err: e, file: this.file }, 'saved assignments unreadable; starting with none (tasks not assigned will be stopped)');
      return [];
    }
  }

  private save(list: Assignment[]): void {
    mkdirSync(this.o.dataDir, { recursive: true });
    writeFileSync(this.file + '.tmp', JSON.stringify(list));
    renameSync(this.file + '.tmp', this.file);
  }

  /** Adopts tasks the runtimes still hold and that are still assigned; stops the others. */
  private async adopt(): Promise<void> {
    const found: Array<{ rt: Runtime; info: TaskInfo }> = [];
    const inDocker = new Set<string>();
    if (this.o.dockerRuntime || existsSync(this.o.dockerSocket ?? DEFAULT_DOCKER_SOCKET)) {
      try {
        for (const info of await this.docker().list()) {
          found.push({ rt: this.docker(), info });
          inDocker.add(info.id.slice(0, SHORT_ID_LEN));
        }
      } catch (e) {
        this.o.log.warn({ err: e }, 'cannot list docker tasks');
      }
    }
    // A docker task's namespace is named like a netns task's: it is Docker's, not an orphan of the
    // netns runtime (stopping it as one killed the sandbox, and the application with it).
    for (const info of await this.netns.list()) if (!inDocker.has(info.id.slice(0, SHORT_ID_LEN))) found.push({ rt: this.netns, info });
    for (const { rt, info } of found) {
      const a = [...this.desired.values()].find((x) => x.task.id.slice(0, SHORT_ID_LEN) === info.id.slice(0, SHORT_ID_LEN));
      if (a && a.desiredState === 'running' && info.running && a.attachments.length > 0 && rt.kind === (a.task.runtime ?? 'netns')) {
        const h: Held = { a, state: 'running', info: { ...info, id: a.task.id, name: a.task.name }, error: null, adopted: true };
        this.tasks.set(a.task.id, h);
        this.attachLocal(a);
        h.health = this.health.begin(a.task.id, rt, h.info!, a.task.healthcheck);
        this.publishRunning(h);
        this.o.log.info({ task: a.task.id, netns: info.netns, pid: info.pid }, 'adopted running task');
      } else {
        this.o.log.info({ task: info.id, netns: info.netns }, 'stopping task that is no longer assigned (or not running)');
        await rt.stop(info.id, this.o.stopGraceMs ?? 5000).catch((e) => this.o.log.error({ err: e, task: info.id }, 'stop failed'));
      }
    }
  }

  /** Requests a converge; runs now unless one is running (then once more after it). */
  kick(): void {
    if (!this.ready || this.stopped) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = (async () => {
      do {
        this.dirty = false;
        try {
          await this.converge();
        } catch (e) {
          this.o.log.error({ err: e }, 'converge failed');
        }
      } while (this.dirty && !this.stopped);
      this.running = null;
    })();
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.kick();
      this.arm();
    }, this.o.retryMs ?? 5000);
    this.timer.unref();
  }

  private async converge(): Promise<void> {
    this.converges++;
    await this.reapExited();
    const want = new Map([...this.desired].filter(([, a]) => a.desiredState === 'running'));
    const going = [...this.tasks.values()].filter((h) => !want.has(h.a.task.id) && h.state !== 'stopped');
    if (going.length) await this.remove(going);
    // Unhealthy tasks: drained like a scale-down, stopped, and only then reported failed.
    const sick = [...this.tasks.values()].filter((h) => h.state === 'running' && h.health === 'unhealthy');
    if (sick.length) await this.remove(sick, new Map(sick.map((h) => [h.a.task.id, `unhealthy: ${this.health.reason(h.a.task.id) || 'health check failed'}`])));
    for (const a of want.values()) {
      const h = this.tasks.get(a.task.id);
      if (h && (h.state === 'running' || h.state === 'starting')) continue;
      if (h?.state === 'failed' && this.managed) continue; // the manager decides (see setAssignments)
      if (this.exited.has(a.task.id)) continue; // exited during this run: cleaned up by the next one (kicked)
      await this.startTask(a);
    }
    // Forget stopped tasks that are no longer assigned at all.
    for (const [id, h] of this.tasks) {
      if (h.state === 'stopped' && !this.desired.has(id)) {
        this.tasks.delete(id);
        this.lastDrains.delete(id);
      }
    }
  }

  /**
   * A running task whose process is gone is marked failed, its records deleted (peers stop
   * sending to it) and its namespace removed; the converge then starts it again (every
   * retryMs at most), until the manager link reports task states and decides restarts.
   */
  private async reapExited(): Promise<void> {
    // Poll (fallback): runtimes without exit events, and netns tasks adopted after a restart.
    const polled = [...this.tasks.values()].filter((h) => h.state === 'running' && (!this.runtimeOf(h.a).onExit || this.runtimeOf(h.a) === this.netns));
    if (polled.length) {
      const alive = new Set<string>();
      for (const rt of new Set(polled.map((h) => this.runtimeOf(h.a)))) {
        for (const i of await rt.list()) if (i.running) alive.add(i.id.slice(0, SHORT_ID_LEN));
      }
      for (const h of polled) {
        if (alive.has(h.a.task.id.slice(0, SHORT_ID_LEN)) || h.state !== 'running') continue;
        h.state = 'failed';
        h.error = 'task process exited';
        this.exited.add(h.a.task.id);
        this.o.log.warn({ task: h.a.task.id }, 'task process exited');
      }
    }
    for (const id of [...this.exited]) {
      this.exited.delete(id);
      const h = this.tasks.get(id);
      if (!h || h.state !== 'failed') continue;
      await this.runtimeOf(h.a).stop(id, 0).catch((e) => this.o.log.error({ err: e, task: id }, 'cleanup after exit failed'));
      this.detachLocal(h.a);
    }
  }

  private attachLocal(a: Assignment): void {
    for (const att of a.attachments) {
      this.o.gossip.core.joinNetwork(att.network.id, this.o.clock.now());
      this.o.overlay.defineNetwork(overlayNetworkOf(att));
      // One local endpoint per attachment: keyed by task AND network (a task on `front` and
      // `back` needs both sandboxes; keyed by task alone the second replaced the first).
      this.o.overlay.addLocal(localKey(a.task.id, att.network.id), { network: att.network.id, ip: att.ip, mac: att.mac });
    }
    this.o.gossip.pump();
  }

  private publish(a: Assignment, state: EndpointRecord['state']): void {
    const now = this.o.clock.now();
    for (const att of a.attachments) {
      const exposed = this.tasks.get(a.task.id)?.info?.exposed ?? [];
      this.o.gossip.core.tableSet(att.network.id, ENDPOINT_TABLE, a.task.id, encodeEndpoint(endpointRecord(a, att, this.o.nodeName, this.o.nodeIp, state, exposed)), now);
    }
    this.o.gossip.pump();
  }

  private async startTask(a: Assignment): Promise<void> {
    const held: Held = { a, state: 'starting', info: null, error: null, adopted: false };
    this.startExits.delete(a.task.id);
    this.tasks.set(a.task.id, held);
    const rt = this.runtimeOf(a);
    try {
      if (a.attachments.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${a.task.id} has no network attachment`);
      const spec: TaskSpec = {
        id: a.task.id, name: a.task.name, env: a.task.env, ...programOf(a),
        ...(a.task.runtime === 'docker' && a.task.image !== 'whoami' ? { image: a.task.image } : {}),
        ...(a.task.healthcheck ? { healthcheck: a.task.healthcheck } : {}),
        ...(a.task.stopSignal ? { stopSignal: a.task.stopSignal } : {}),
      };
      if (a.task.limits) spec.limits = a.task.limits;
      if (a.task.container) spec.container = a.task.container;
      this.attachLocal(a);
      await this.o.overlay.settled();
      const list: RuntimeAttachment[] = a.attachments.map((att) => {
        const net = overlayNetworkOf(att);
        return {
          sandboxNs: sandboxName(this.o.overlay.prefix, net.id), bridge: BRIDGE_NAME,
          ip: att.ip, prefix: att.prefix, gateway: net.gateway, mac: att.mac, mtu: this.o.overlay.mtuOf(net),
        };
      });
      held.info = await rt.start(spec, list, this.o.beforeApp ? { beforeApp: this.o.beforeApp } : {});
      await this.untilServing(a, rt, held.info);
      if (this.startExits.has(a.task.id)) {
        const code = this.startExits.get(a.task.id);
        throw new MeshError('MESHD_EXEC_FAILED', `task ${a.task.id} exited during start${code === null || code === undefined ? '' : ` with code ${code}`}`);
      }
      held.state = 'running';
      held.health = this.health.begin(a.task.id, rt, held.info, a.task.healthcheck);
      this.publishRunning(held);
      this.o.log.info({ task: a.task.id, netns: held.info.netns, pid: held.info.pid, ips: a.attachments.map((x) => x.ip) }, 'task running');
    } catch (e) {
      const err = toMeshError(e);
      held.state = 'failed';
      held.error = err.message;
      this.o.log.error({ err, task: a.task.id }, 'task start failed (retried later)');
      await rt.stop(a.task.id, 0).catch(() => undefined);
      this.detachLocal(a);
    }
  }

  /** Waits until a started task serves its target ports (throws when it exited first). */
  private async untilServing(a: Assignment, rt: Runtime, info: TaskInfo): Promise<void> {
    const ms = this.o.readyTimeoutMs ?? 10_000;
    // /proc/<pid>/net/* is the whole namespace's socket table: it works for a container's pid too.
    const real = (rt === this.netns && !this.o.netnsRuntime) || (rt === this.dockerRt && !this.o.dockerRuntime);
    const probe = this.o.readiness ?? (real ? waitServing : undefined);
    const ports = a.ports.map((p) => ({ proto: p.proto, port: p.target }));
    if (!probe || ms <= 0 || ports.length === 0 || info.pid === null || info.pid <= 0) return;
    const r = await probe(info.pid, ports, ms);
    if (r === 'exited') throw new MeshError('MESHD_EXEC_FAILED', `task ${a.task.id} exited before serving ${ports.map((p) => `${p.port}/${p.proto}`).join(', ')}`);
    if (r === 'timeout') this.o.log.warn({ task: a.task.id, ports, ms }, 'task does not serve its target ports yet: published as running anyway');
  }

  /** Drains (tasks that were backends), stops; `failed` names tasks that end failed, with their error. */
  private async remove(list: Held[], failed?: ReadonlyMap<string, string>): Promise<void> {
    for (const h of list) this.health.end(h.a.task.id);
    const live = list.filter((h) => h.state === 'running' && h.served === true);
    for (const h of list) if (h.state === 'running' && !live.includes(h)) h.state = 'draining'; // never a backend: nothing to drain
    for (const h of live) {
      h.state = 'draining';
      this.publish(h.a, 'draining');
    }
    if (live.length) await this.drain(live);
    for (const h of list) {
      try {
        await this.runtimeOf(h.a).stop(h.a.task.id, h.a.task.stopGraceMs ?? this.o.stopGraceMs ?? 5000, h.a.task.stopSignal);
        const why = failed?.get(h.a.task.id);
        h.state = why === undefined ? 'stopped' : 'failed';
        h.error = why ?? null;
      } catch (e) {
        h.state = 'failed';
        h.error = `stop: ${toMeshError(e).message}`;
        this.o.log.error({ err: e, task: h.a.task.id }, 'task stop failed (retried later)');
        continue;
      }
      this.detachLocal(h.a);
    }
  }

  /** Waits until the draining tasks are confirmed out of every node's LB and DNS (or the fixed period). */
  private async drain(live: Held[]): Promise<void> {
    const d = this.o.drain;
    if (!d) {
      await new Promise((r) => setTimeout(r, this.o.drainMs ?? DEFAULT_DRAIN_MS));
      return;
    }
    const results: DrainResult[] = await Promise.all(live.map((h) => d.wait(h.a.task.id, h.a.attachments.map((x) => x.network.id))));
    for (const r of results) this.lastDrains.set(r.taskId, r);
  }

  /** Deletes the task's records and local endpoint; leaves networks no task uses any more. */
  private detachLocal(a: Assignment): void {
    this.health.end(a.task.id);
    const now = this.o.clock.now();
    // Idempotent: a task that failed was detached when it exited, and is detached again when the
    // manager then removes it; by then the node may have left the network (tableDelete would throw
    // "not on network", failing the converge that must start the replacement).
    const joined = new Set(this.o.gossip.core.networks());
    for (const att of a.attachments) {
      this.o.overlay.removeLocal(localKey(a.task.id, att.network.id));
      if (!joined.has(att.network.id)) continue;
      this.o.gossip.core.tableDelete(att.network.id, ENDPOINT_TABLE, a.task.id, now);
      const used = [...this.tasks.values()].some((h) => h.a.task.id !== a.task.id && (h.state === 'running' || h.state === 'starting' || h.state === 'draining')
        && h.a.attachments.some((x) => x.network.id === att.network.id));
      // Never leave `ingress`: the node's ingress sandbox (routing mesh) lives on it for the node's
      // whole life (lb-ingress-side joins it at start). Leaving it with the last local task attached
      // there made the node's published ports stop reaching remote tasks (found by the chaos soak).
      if (!used && att.network.id !== INGRESS_NETWORK) {
        this.o.gossip.core.leaveNetwork(att.network.id, now);
        this.o.overlay.forgetNetwork(att.network.id);
      }
    }
    this.o.gossip.pump();
  }

  tasksView(): TaskView[] {
    const ids = new Set([...this.tasks.keys(), ...this.desired.keys()]);
    return [...ids].sort().map((id) => {
      const h = this.tasks.get(id);
      const a = h?.a ?? this.desired.get(id)!;
      const rt = a.task.runtime ?? 'netns';
      const netnsName = h?.info?.netns ?? null;
      return {
        id, name: a.task.name, service: a.task.serviceName, runtime: rt,
        state: h?.state ?? 'new',
        desiredState: this.desired.get(id)?.desiredState ?? 'shutdown',
        ips: Object.fromEntries(a.attachments.map((x) => [x.network.name, x.ip])),
        networks: a.attachments.map((x) => x.network.name),
        netns: netnsName,
        container: rt === 'docker' && h?.info ? `${this.o.prefix}c-${id.slice(0, SHORT_ID_LEN)}` : null,
        pid: h?.info?.pid ?? null,
        error: h?.error ?? null,
        adopted: h?.adopted ?? false,
        drain: this.drainOf(id),
        health: h?.health ?? null,
      };
    });
  }

  private drainOf(id: string): TaskView['drain'] {
    const r = this.lastDrains.get(id);
    return r ? { outcome: r.outcome, ms: r.ms } : null;
  }

  routes(router: Router): void {
    router.add('PUT', '/v1/assignments', (r) => ({ json: this.setAssignments(r.body) }));
    router.add('GET', '/v1/assignments', () => ({ json: [...this.desired.values()] }));
    router.add('GET', '/v1/tasks', () => ({ json: this.tasksView() }));
    router.add('GET', '/v1/tasks/:task', (r) => {
      const t = this.tasksView().find((x) => x.id === r.params.task || x.name === r.params.task);
      if (!t) throw new MeshError('MESHD_NOT_FOUND', `no task ${r.params.task} on ${this.o.nodeName}`);
      return { json: t };
    });
    // Runs a command INSIDE a task through its runtime (docker: an Engine API exec in the
    // application container, so the image's own filesystem and tools; netns: in its namespace).
    router.add('POST', '/v1/tasks/:task/exec', async (r) => {
      const t = this.tasksView().find((x) => x.id === r.params.task || x.name === r.params.task);
      if (!t) throw new MeshError('MESHD_NOT_FOUND', `no task ${r.params.task} on ${this.o.nodeName}`);
      const h = this.tasks.get(t.id);
      if (!h || (h.state !== 'running' && h.state !== 'draining')) throw new MeshError('MESHD_NOT_READY', `task ${t.name} is ${t.state}`);
      const body = (r.body ?? {}) as { argv?: unknown; input?: unknown; timeoutMs?: unknown };
      if (!Array.isArray(body.argv) || body.argv.length === 0 || !body.argv.every((x) => typeof x === 'string')) throw new MeshError('MESHD_BAD_ARGUMENT', 'exec: argv must be a non-empty list of strings');
      const timeoutMs = typeof body.timeoutMs === 'number' && body.timeoutMs > 0 ? Math.min(body.timeoutMs, 600_000) : 60_000;
      const res = await this.runtimeOf(h.a).exec(t.id, body.argv as string[], { timeoutMs, ...(typeof body.input === 'string' ? { input: body.input } : {}) });
      return { json: res };
    });
    // The task's output through its runtime, streamed (task-logs.ts); any task the worker holds,
    // also a failed one whose container is still there.
    router.add('GET', '/v1/tasks/:task/logs', (r) => this.logStreams.handle(r, (ref) => {
      const t = this.tasksView().find((x) => x.id === ref || x.name === ref);
      const h = t && this.tasks.get(t.id);
      if (!t || !h) throw new MeshError('MESHD_NOT_FOUND', `no task ${ref} on ${this.o.nodeName}`);
      return { id: t.id, name: t.name, runtime: this.runtimeOf(h.a) };
    }));
  }
}
