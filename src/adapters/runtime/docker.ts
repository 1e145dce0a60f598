/**
 * The `docker` runtime, through the docker CLI (dockerode is not a dependency yet; the
 * calls map 1:1 onto its API: create/start with NetworkMode none, inspect, exec, stop,
 * remove). The container starts with network `none`; meshd then names its network
 * namespace (`ip netns attach <prefix>t-<task> <pid>`) and plumbs a veth into it exactly
 * as the netns runtime does (attach.ts). Containers carry labels so list() works after
 * an agent restart. Images are never pulled: `pull=never`, a local image is required.
 *
 * The built-in `whoami` runs busybox httpd from a page written at start, under a shell
 * that traps SIGTERM (PID 1 ignores signals it has no handler for).
 */
import { MeshError } from '../../core/errors.js';
import type { Exec, ExecResult } from '../exec.js';
import { attach, shortId } from './attach.js';
import { WHOAMI_PORT, type Attachment, type RunOptions, type Runtime, type TaskInfo, type TaskSpec } from './types.js';

export interface DockerRuntimeOptions {
  prefix: string;
  exec: Exec;
  node: string;
  /** Local image with busybox (sh, httpd) used for `builtin: 'whoami'` and as default. */
  image: string;
  /** Extra global docker CLI args, e.g. ['-H', 'unix:///run/docker.sock']. */
  dockerArgs?: string[];
}

/** Shell program of the docker whoami: same three lines as the netns whoami. */
export const DOCKER_WHOAMI_SH =
  'mkdir -p /tmp/www && printf "task: %s\\nip: %s\\nnode: %s\\n" "$MESHD_TASK_NAME" "$MESHD_TASK_IP" "$MESHD_NODE" > /tmp/www/index.html || exit 1; ' +
  'trap \'kill $p 2>/dev/null; exit 0\' TERM; busybox httpd -f -p "${MESHD_WHOAMI_PORT:-80}" -h /tmp/www & p=$!; wait $p';

export class DockerRuntime implements Runtime {
  readonly kind = 'docker' as const;

  constructor(private readonly opts: DockerRuntimeOptions) {}

  private docker(args: readonly string[], timeoutMs?: number): Promise<ExecResult> {
    return this.opts.exec.run('docker', [...(this.opts.dockerArgs ?? []), ...args], timeoutMs ? { timeoutMs } : {});
  }

  private async dockerCheck(args: readonly string[]): Promise<string> {
    const r = await this.docker(args);
    if (r.code !== 0) throw new MeshError('MESHD_EXEC_FAILED', `docker ${args.slice(0, 2).join(' ')}: ${r.stderr.trim().slice(0, 400)}`, { args: [...args] });
    return r.stdout;
  }

  container(taskId: string): string {
    return `${this.opts.prefix}c-${shortId(taskId)}`;
  }

  taskNs(taskId: string): string {
    return `${this.opts.prefix}t-${shortId(taskId)}`;
  }

  async start(task: TaskSpec, a: Attachment): Promise<TaskInfo> {
    if ((task.argv === undefined) === (task.builtin === undefined)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: give exactly one of argv or builtin`);
    }
    const c = this.container(task.id);
    const ns = this.taskNs(task.id);
    if ((await this.docker(['container', 'inspect', c])).code === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id} already exists (${c})`);
    const env: Record<string, string> = {
      MESHD_TASK_ID: task.id, MESHD_TASK_NAME: task.name, MESHD_TASK_IP: a.ip, MESHD_NODE: this.opts.node,
      MESHD_WHOAMI_PORT: String(WHOAMI_PORT), ...task.env,
    };
    const argv = task.builtin === 'whoami' ? ['sh', '-c', DOCKER_WHOAMI_SH] : [...(task.argv ?? [])];
    try {
      await this.dockerCheck([
        'run', '-d', '--pull', 'never', '--name', c, '--network', 'none', '--hostname', shortId(task.id),
        // The node's embedded DNS answers at 127.0.0.11 inside the task namespace (Docker's ndots:0).
        // Hostname without dots (Docker's short-id style): a hostname like `web.1` makes resolvers
        // derive the search domain `1`, and then `web` resolves as `web.1` — another task's name.
        '--dns', '127.0.0.11', '--dns-option', 'ndots:0',
        '--label', `meshd.prefix=${this.opts.prefix}`, '--label', `meshd.task=${task.id}`, '--label', `meshd.name=${task.name}`,
        ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
        this.opts.image, ...argv,
      ]);
      const pid = Number((await this.dockerCheck(['inspect', '-f', '{{.State.Pid}}', c])).trim());
      if (!(pid > 0)) throw new MeshError('MESHD_EXEC_FAILED', `container ${c} is not running`);
      await this.opts.exec.check('ip', ['netns', 'attach', ns, String(pid)]);
      await attach(this.opts.exec, task.id, ns, a);
      return { id: task.id, name: task.name, netns: ns, pid, running: true, ip: a.ip };
    } catch (e) {
      await this.docker(['rm', '-f', c]);
      await this.opts.exec.run('ip', ['netns', 'del', ns]);
      throw e;
    }
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    const c = this.container(taskId);
    const secs = Math.max(0, Math.ceil(graceMs / 1000));
    await this.docker(['stop', '-t', String(secs), c], (secs + 30) * 1000);
    const rm = await this.docker(['rm', '-f', c]);
    if (rm.code !== 0 && !/No such container/i.test(rm.stderr)) throw new MeshError('MESHD_EXEC_FAILED', `docker rm ${c}: ${rm.stderr.trim()}`);
    await this.opts.exec.run('ip', ['netns', 'del', this.taskNs(taskId)]);
  }

  async list(): Promise<TaskInfo[]> {
    const ids = (await this.dockerCheck(['ps', '-aq', '--filter', `label=meshd.prefix=${this.opts.prefix}`])).split('\n').filter(Boolean);
    if (ids.length === 0) return [];
    const rows = JSON.parse(await this.dockerCheck(['inspect', ...ids])) as { Config: { Labels: Record<string, string> }; State: { Pid: number; Running: boolean } }[];
    const out: TaskInfo[] = [];
    for (const r of rows) {
      const id = r.Config.Labels['meshd.task'] ?? '';
      const ns = this.taskNs(id);
      const addr = await this.opts.exec.run('ip', ['-j', '-n', ns, '-4', 'addr', 'show', 'dev', 'eth0']);
      let ip: string | null = null;
      if (addr.code === 0) ip = (JSON.parse(addr.stdout || '[]') as { addr_info?: { local?: string }[] }[])[0]?.addr_info?.[0]?.local ?? null;
      out.push({ id, name: r.Config.Labels['meshd.name'] ?? '', netns: ns, pid: r.State.Pid || null, running: r.State.Running, ip });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async exec(taskId: string, argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
    if (argv.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', 'exec needs a command');
    const c = this.container(taskId);
    if ((await this.docker(['container', 'inspect', c])).code !== 0) throw new MeshError('MESHD_NOT_FOUND', `no such task: ${taskId}`);
    return this.opts.exec.run('docker', [...(this.opts.dockerArgs ?? []), 'exec', ...(opts.input !== undefined ? ['-i'] : []), c, ...argv], {
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.input !== undefined ? { input: opts.input } : {}),
    });
  }
}
