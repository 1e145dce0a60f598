/**
 * The `docker` runtime, on the Docker Engine API through dockerode: one long-lived client per
 * agent over the unix socket, no docker CLI. Each task is two containers, like a Kubernetes pod:
 *
 * 1. a sandbox container `<prefix>s-<task>` from a local pause-like image (NetworkMode none,
 *    Dns 127.0.0.11 with ndots:0, hostname = short task id) holds the task's network namespace;
 *    meshd names it (`ip netns attach <prefix>t-<task> <pid>`) and plumbs one veth per network
 *    (attach.ts: eth0, eth1, …), then runs the caller's `beforeApp` hook (DNS sockets);
 * 2. only then the application container `<prefix>c-<task>` starts with NetworkMode
 *    `container:<sandbox>`: it shares the complete network, resolv.conf, hosts and hostname from
 *    its first instruction, and the namespace outlives an application restart.
 *
 * Images are never pulled: a missing image fails the start with MESHD_IMAGE_NOT_FOUND
 * (`image X not present on node N`, matched by the manager to place the task elsewhere).
 * Containers carry labels (meshd.prefix, meshd.task, meshd.name, meshd.role) so list() works
 * after an agent restart; deaths arrive through the events stream (docker-events.ts).
 * Health: the spec's check goes to the Engine as Config.Healthcheck (merged by it with the image's
 * HEALTHCHECK; `disable` → Test NONE), so the Engine runs it; start() and list() report
 * State.Health, onHealth() its `health_status` events.
 * The built-in `whoami` runs busybox httpd under a shell that traps SIGTERM (PID 1 ignores
 * signals it has no handler for).
 */
import { PassThrough, Readable } from 'node:stream';
import Docker from 'dockerode';
import { MeshError } from '../../core/errors.js';
import type { HealthStatus } from '../../core/health/policy.js';
import { dockerHealthConfig } from '../../core/health/spec.js';
import type { MountSpec } from '../../core/spec/container.js';
import type { Exec, ExecResult } from '../exec.js';
import type { Logger } from '../logger.js';
import { netnsExists } from '../netns-dir.js';
import { attach, detachAll, shortId } from './attach.js';
import { DockerEvents } from './docker-events.js';
import { FrameDemuxer } from './docker-stream.js';
import { stopSignalOf } from './signal.js';
import {
  WHOAMI_PORT, type Attachment, type ExitListener, type HealthListener, type LogOptions, type RunOptions, type Runtime, type StartOptions, type TaskInfo, type TaskSpec,
} from './types.js';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
export const DEFAULT_SANDBOX_IMAGE = 'meshd/sandbox:local';

export interface DockerRuntimeOptions {
  prefix: string;
  exec: Exec;
  node: string;
  /** Local image with busybox (sh, httpd) for `builtin: 'whoami'` and for tasks that name no image. */
  image: string;
  /** Engine API socket (default /var/run/docker.sock). */
  socketPath?: string;
  /** Local pause-like image of the sandbox containers (default meshd/sandbox:local). */
  sandboxImage?: string;
  log?: Logger;
}

/** Shell program of the docker whoami: same three lines as the netns whoami. */
export const DOCKER_WHOAMI_SH =
  'mkdir -p /tmp/www && printf "task: %s\\nip: %s\\nnode: %s\\n" "$MESHD_TASK_NAME" "$MESHD_TASK_IP" "$MESHD_NODE" > /tmp/www/index.html || exit 1; ' +
  'trap \'kill $p 2>/dev/null; exit 0\' TERM; busybox httpd -f -p "${MESHD_WHOAMI_PORT:-80}" -h /tmp/www & p=$!; wait $p';

/** HTTP status of a dockerode error (404 no such container/image, 409 conflict / not running). */
function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number } | null)?.statusCode;
}

function engineError(what: string, e: unknown): MeshError {
  const msg = (e as { json?: { message?: string } } | null)?.json?.message ?? (e instanceof Error ? e.message : String(e));
  return new MeshError('MESHD_EXEC_FAILED', `docker ${what}: ${String(msg).trim().slice(0, 400)}`, undefined, { cause: e });
}

/** Awaits a call whose 404 means "already gone" (idempotent removal). */
async function unless404<T>(p: Promise<T>, what: string, also: number[] = []): Promise<T | undefined> {
  try {
    return await p;
  } catch (e) {
    const s = statusOf(e);
    if (s === 404 || (s !== undefined && also.includes(s))) return undefined;
    throw engineError(what, e);
  }
}

type Labels = Record<string, string>;

/** Sandbox sysctls that turn IPv6 on in the task namespace (tasks on an --ipv6 network). */
const IPV6_ON: Record<string, string> = { 'net.ipv6.conf.all.disable_ipv6': '0', 'net.ipv6.conf.default.disable_ipv6': '0' };

export class DockerRuntime implements Runtime {
  readonly kind = 'docker' as const;
  readonly docker: Docker;
  private readonly events: DockerEvents;

  constructor(private readonly opts: DockerRuntimeOptions) {
    this.docker = new Docker({ socketPath: opts.socketPath ?? DEFAULT_DOCKER_SOCKET });
    this.events = new DockerEvents(this.docker, opts.prefix, opts.log);
  }

  /** Application container name. */
  container(taskId: string): string {
    return `${this.opts.prefix}c-${shortId(taskId)}`;
  }

  sandbox(taskId: string): string {
    return `${this.opts.prefix}s-${shortId(taskId)}`;
  }

  taskNs(taskId: string): string {
    return `${this.opts.prefix}t-${shortId(taskId)}`;
  }

  private labels(task: TaskSpec, role: 'sandbox' | 'app'): Labels {
    return { 'meshd.prefix': this.opts.prefix, 'meshd.task': task.id, 'meshd.name': task.name, 'meshd.role': role };
  }

  /** Throws MESHD_IMAGE_NOT_FOUND (exact message the manager matches) when the image is not local; returns its exposed ports. */
  async requireImage(image: string): Promise<Array<{ proto: 'tcp' | 'udp'; port: number }>> {
    try {
      const info = await this.docker.getImage(image).inspect();
      return exposedPorts((info.Config as { ExposedPorts?: Record<string, unknown> } | undefined)?.ExposedPorts);
    } catch (e) {
      if (statusOf(e) === 404) throw new MeshError('MESHD_IMAGE_NOT_FOUND', `image ${image} not present on node ${this.opts.node}`, { image, node: this.opts.node });
      throw engineError(`image inspect ${image}`, e);
    }
  }

  async start(task: TaskSpec, list: readonly Attachment[], sopts: StartOptions = {}): Promise<TaskInfo> {
    if ((task.argv === undefined) === (task.builtin === undefined)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: give exactly one of argv or builtin`);
    }
    const first = list[0];
    if (!first) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: no network attachment`);
    const c = this.container(task.id);
    const sb = this.sandbox(task.id);
    const ns = this.taskNs(task.id);
    const stopSignal = task.stopSignal !== undefined ? String(stopSignalOf(task.stopSignal)) : undefined;
    for (const name of [sb, c]) {
      if (await unless404(this.docker.getContainer(name).inspect(), `inspect ${name}`)) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id} already exists (${name})`);
    }
    const image = task.builtin === 'whoami' ? this.opts.image : (task.image ?? this.opts.image);
    const sandboxImage = this.opts.sandboxImage ?? DEFAULT_SANDBOX_IMAGE;
    const exposed = await this.requireImage(image);
    await this.requireImage(sandboxImage);
    const env: Record<string, string> = {
      MESHD_TASK_ID: task.id, MESHD_TASK_NAME: task.name, MESHD_TASK_IP: first.ip, MESHD_NODE: this.opts.node,
      MESHD_WHOAMI_PORT: String(WHOAMI_PORT), ...task.env,
    };
    const cmd = task.builtin === 'whoami' ? ['sh', '-c', DOCKER_WHOAMI_SH] : [...(task.argv ?? [])];
    // The Engine runs the check and merges it with the image's HEALTHCHECK field by field.
    const healthcheck = dockerHealthConfig(task.healthcheck);
    const cc = task.container ?? {};
    try {
      const sandbox = await this.docker.createContainer({
        name: sb, Image: sandboxImage, Labels: this.labels(task, 'sandbox'),
        // Hostname without dots (Docker's short-id style): a hostname like `web.1` makes resolvers
        // derive the search domain `1`, and then `web` resolves as `web.1` — another task's name.
        // A --hostname (rendered by the manager) is the user's choice, dots included.
        Hostname: cc.hostname ?? shortId(task.id),
        HostConfig: {
          NetworkMode: 'none',
          // The node's embedded DNS answers at 127.0.0.11 inside the task namespace (Docker's ndots:0).
          Dns: ['127.0.0.11'], DnsOptions: dnsOptionsOf(cc.dnsOptions),
          // An attachment on an --ipv6 network: Docker disables IPv6 in a container with no IPv6
          // network of its own (`addr add` then fails "IPv6 is disabled on this device"); what
          // `docker run --sysctl` does, as Docker itself does for its --ipv6 networks. `default`
          // too: the task's eth<i> are created after the sandbox starts and take the default.
          ...(list.some((x) => x.ip6 !== undefined) ? { Sysctls: IPV6_ON } : {}),
        },
      });
      // Creating the app container (a copy of its image's filesystem: the slow part on vfs) runs
      // while the sandbox starts and is plumbed; it only starts once the network is complete.
      const creating = this.docker.createContainer({
        // meshd.* labels last: list() relies on them (the manager refuses meshd.* container labels anyway).
        name: c, Image: image, Labels: { ...cc.labels, ...this.labels(task, 'app') },
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        ...(cmd.length ? { Cmd: cmd } : {}),
        ...(cc.entrypoint !== undefined ? { Entrypoint: cc.entrypoint } : {}),
        ...(cc.workdir !== undefined ? { WorkingDir: cc.workdir } : {}),
        ...(cc.user !== undefined ? { User: cc.user } : {}),
        ...(stopSignal ? { StopSignal: stopSignal } : {}),
        ...(healthcheck ? { Healthcheck: healthcheck } : {}),
        HostConfig: {
          NetworkMode: `container:${sb}`,
          // Limits (service --limit-cpu/--limit-memory): docker's own enforcement, as `docker run --cpus/--memory`.
          ...(task.limits?.cpuMilli ? { NanoCpus: task.limits.cpuMilli * 1_000_000 } : {}),
          ...(task.limits?.memoryBytes ? { Memory: task.limits.memoryBytes } : {}),
          ...(cc.mounts?.length ? { Mounts: cc.mounts.map(engineMount) } : {}),
          ...(cc.readOnly ? { ReadonlyRootfs: true } : {}),
          ...(cc.init ? { Init: true } : {}),
        },
      });
      creating.catch(() => undefined); // awaited below; a failure of the plumbing must not leave it unhandled
      await sandbox.start();
      const pid = (await sandbox.inspect()).State.Pid;
      if (!(pid > 0)) throw new MeshError('MESHD_EXEC_FAILED', `sandbox ${sb} is not running`);
      // Names the sandbox's namespace and plumbs it, in one process (attach.ts).
      await attach(this.opts.exec, task.id, ns, list, ['netns', 'attach', ns, String(pid)]);
      await sopts.beforeApp?.(ns);
      const app = await creating;
      await app.start();
      const st = (await app.inspect()).State;
      const health = healthOf(st);
      return { id: task.id, name: task.name, netns: ns, pid: st.Pid > 0 ? st.Pid : null, running: st.Running, ip: first.ip, exposed, ...(health ? { health } : {}) };
    } catch (e) {
      await this.remove(task.id).catch(() => undefined);
      if (e instanceof MeshError) throw e;
      throw engineError(`start task ${task.id}`, e);
    }
  }

  /** Removes both containers (SIGKILL) and the named namespace; absent parts are fine. */
  private async remove(taskId: string): Promise<void> {
    await unless404(this.docker.getContainer(this.container(taskId)).remove({ force: true, v: true }), `rm ${this.container(taskId)}`, [409]);
    await detachAll(this.opts.exec, this.taskNs(taskId));
    await unless404(this.docker.getContainer(this.sandbox(taskId)).remove({ force: true, v: true }), `rm ${this.sandbox(taskId)}`, [409]);
    await this.opts.exec.run('ip', ['netns', 'del', this.taskNs(taskId)]);
  }

  async stop(taskId: string, graceMs: number, signal?: string): Promise<void> {
    const app = this.docker.getContainer(this.container(taskId));
    const info = await unless404(app.inspect(), `inspect ${this.container(taskId)}`);
    if (info?.State.Running) {
      const sig = String(stopSignalOf(signal ?? ((info.Config as { StopSignal?: string }).StopSignal || undefined)));
      const exited = app.wait({ condition: 'not-running' }).then(() => true, () => true);
      await unless404(app.kill({ signal: sig }), `kill ${this.container(taskId)}`, [409]);
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), Math.max(0, graceMs));
      });
      await Promise.race([exited, graceOver]);
      clearTimeout(timer);
    }
    // force: SIGKILL whatever is left after the grace, then remove.
    await this.remove(taskId);
    if (netnsExists(this.taskNs(taskId))) {
      await this.opts.exec.check('ip', ['netns', 'del', this.taskNs(taskId)]);
    }
  }

  async list(): Promise<TaskInfo[]> {
    let rows: Docker.ContainerInfo[];
    try {
      rows = await this.docker.listContainers({ all: true, filters: { label: [`meshd.prefix=${this.opts.prefix}`] } });
    } catch (e) {
      throw engineError('list containers', e);
    }
    const byTask = new Map<string, { name: string; app?: Docker.ContainerInfo }>();
    for (const r of rows) {
      const id = r.Labels['meshd.task'];
      if (!id) continue;
      const t = byTask.get(id) ?? { name: r.Labels['meshd.name'] ?? '' };
      if (r.Labels['meshd.role'] !== 'sandbox') t.app = r;
      byTask.set(id, t);
    }
    const out: TaskInfo[] = [];
    for (const [id, t] of byTask) {
      const ns = this.taskNs(id);
      const running = t.app?.State === 'running';
      let pid: number | null = null;
      let exposed: Array<{ proto: 'tcp' | 'udp'; port: number }> = [];
      let health: HealthStatus | undefined;
      if (running && t.app) {
        const ins = await unless404(this.docker.getContainer(t.app.Id).inspect(), 'inspect');
        pid = ins?.State.Pid || null;
        health = ins ? healthOf(ins.State) : undefined;
        exposed = exposedPorts((ins?.Config as { ExposedPorts?: Record<string, unknown> } | undefined)?.ExposedPorts);
      }
      const addr = await this.opts.exec.run('ip', ['-j', '-n', ns, '-4', 'addr', 'show', 'dev', 'eth0']);
      let ip: string | null = null;
      if (addr.code === 0) ip = (JSON.parse(addr.stdout || '[]') as { addr_info?: { local?: string }[] }[])[0]?.addr_info?.[0]?.local ?? null;
      out.push({ id, name: t.name, netns: ns, pid, running, ip, exposed, ...(health ? { health } : {}) });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private async appOf(taskId: string): Promise<Docker.Container> {
    const c = this.docker.getContainer(this.container(taskId));
    if (!(await unless404(c.inspect(), `inspect ${this.container(taskId)}`))) throw new MeshError('MESHD_NOT_FOUND', `no such task: ${taskId}`);
    return c;
  }

  /**
   * Runs argv in the application container (stdout/stderr demuxed, exit code). On timeout the
   * stream is dropped and code 124 returned; the Engine API cannot kill an exec'd process, so a
   * command that ignores its closed output may linger until the container stops.
   */
  async exec(taskId: string, argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', 'exec needs a command');
    const c = await this.appOf(taskId);
    const stdin = opts.input !== undefined;
    let stream: NodeJS.ReadWriteStream;
    let ex: Docker.Exec;
    try {
      ex = await c.exec({ Cmd: [...argv], AttachStdout: true, AttachStderr: true, AttachStdin: stdin });
      stream = (await ex.start({ hijack: true, stdin })) as unknown as NodeJS.ReadWriteStream;
    } catch (e) {
      throw engineError(`exec in ${this.container(taskId)}`, e);
    }
    const demux = new FrameDemuxer();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const timedOut = await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => {
        (stream as unknown as { destroy(): void }).destroy();
        resolve(true);
      }, timeoutMs);
      stream.on('data', (chunk: Buffer) => {
        for (const f of demux.push(chunk)) (f.stream === 'stderr' ? err : out).push(f.data);
      });
      stream.once('end', () => {
        clearTimeout(timer);
        resolve(false);
      });
      stream.once('error', (e) => {
        clearTimeout(timer);
        reject(engineError(`exec in ${this.container(taskId)}`, e));
      });
      if (opts.input !== undefined) stream.end(opts.input);
    });
    const stderr = Buffer.concat(err).toString();
    if (timedOut) return { code: 124, stdout: Buffer.concat(out).toString(), stderr: `${stderr}exec timed out after ${timeoutMs} ms\n` };
    const code = (await ex.inspect()).ExitCode;
    return { code: code ?? 1, stdout: Buffer.concat(out).toString(), stderr };
  }

  /** The application container's log (stdout and stderr merged in order). Destroy a follow stream to stop it. */
  async logs(taskId: string, o: LogOptions = {}): Promise<Readable> {
    const c = await this.appOf(taskId);
    const base = { stdout: true, stderr: true, timestamps: o.timestamps ?? false, ...(o.tail !== undefined ? { tail: o.tail } : {}) };
    const demux = new FrameDemuxer();
    const text = (b: Buffer): string => demux.push(b).map((f) => f.data.toString()).join('');
    try {
      if (!o.follow) return Readable.from([text(await c.logs({ ...base, follow: false }))]);
      const src = await c.logs({ ...base, follow: true });
      const out = new PassThrough();
      src.on('data', (b: Buffer) => out.write(text(b)));
      src.once('end', () => out.end());
      src.once('error', (e) => out.destroy(engineError(`logs ${this.container(taskId)}`, e)));
      out.once('close', () => (src as unknown as { destroy(): void }).destroy());
      return out;
    } catch (e) {
      throw engineError(`logs ${this.container(taskId)}`, e);
    }
  }

  /** Application container deaths, from the events stream (subscribed once, reconnected on break). */
  onExit(cb: ExitListener): () => void {
    return this.events.subscribe((e) => {
      if (e.role === 'app') cb(e.taskId, e.exitCode);
    });
  }

  /** Health changes of the Engine's checks (the spec's or the image's HEALTHCHECK), from the events stream. */
  onHealth(cb: HealthListener): () => void {
    return this.events.subscribeHealth((e) => {
      if (e.status !== 'unhealthy') return cb(e.taskId, e.status);
      // The Engine's last probe says why (exit code and output), for the task's error.
      void this.docker.getContainer(e.containerId).inspect().then((i) => {
        const last = (i.State as { Health?: { Log?: Array<{ ExitCode?: number; Output?: string }> } }).Health?.Log?.at(-1);
        return last ? `exit ${last.ExitCode ?? '?'}${last.Output?.trim() ? `: ${last.Output.trim().slice(0, 200)}` : ''}` : undefined;
      }, () => undefined).then((detail) => cb(e.taskId, e.status, detail));
    });
  }

  /** Resolves once the events stream is open (tests measure from here). */
  eventsOpened(timeoutMs?: number): Promise<void> {
    return this.events.opened(timeoutMs);
  }

  async close(): Promise<void> {
    this.events.close();
  }
}

/** The sandbox's resolver options: ours (`ndots:0`) unless the spec sets its own `ndots`, then the spec's. */
export function dnsOptionsOf(opts: readonly string[] | undefined): string[] {
  const own = opts ?? [];
  return [...(own.some((o) => o.startsWith('ndots:')) ? [] : ['ndots:0']), ...own];
}

/** A spec mount → the Engine's HostConfig.Mounts entry (a named volume that does not exist is created by the Engine). */
export function engineMount(m: MountSpec): Docker.MountSettings {
  // Source "" is the Engine's "none" (tmpfs, anonymous volume), as the docker CLI sends it.
  const out: Docker.MountSettings = { Type: m.type, Source: m.source ?? '', Target: m.target, ReadOnly: m.readOnly === true };
  if (m.type === 'tmpfs' && (m.tmpfsSizeBytes || m.tmpfsMode !== undefined)) {
    // dockerode's type wants both; the Engine treats 0 as "not set" for either.
    out.TmpfsOptions = { SizeBytes: m.tmpfsSizeBytes ?? 0, Mode: m.tmpfsMode ?? 0 };
  }
  return out;
}

/** State.Health.Status of an inspected container; undefined when it has no check (none, or Test NONE). */
export function healthOf(state: { Health?: { Status?: string } } | undefined): HealthStatus | undefined {
  const s = state?.Health?.Status;
  return s === 'starting' || s === 'healthy' || s === 'unhealthy' ? s : undefined;
}

/** `{"6379/tcp": {}, "53/udp": {}}` (Config.ExposedPorts) → ports; ranges and other protocols are left out. */
export function exposedPorts(m: Record<string, unknown> | undefined): Array<{ proto: 'tcp' | 'udp'; port: number }> {
  const out: Array<{ proto: 'tcp' | 'udp'; port: number }> = [];
  for (const k of Object.keys(m ?? {})) {
    const x = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(k);
    const port = x ? Number(x[1]) : 0;
    if (x && port >= 1 && port <= 65535) out.push({ proto: (x[2] ?? 'tcp') as 'tcp' | 'udp', port });
  }
  return out.sort((a, b) => a.port - b.port || (a.proto < b.proto ? -1 : 1));
}
