/**
 * The `netns` runtime (embedded default): a task is a process in its own named network
 * namespace `<prefix>t-<task>`, attached by veth to its network's bridge. The process is
 * started detached (`ip netns exec NS argv...`, which execs in place so the pid is the
 * program's) and outlives the agent; list() rediscovers tasks from the kernel
 * (`ip netns list` / `ip netns pids`), so an agent restart adopts running tasks.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { MeshError } from '../../core/errors.js';
import type { Exec, ExecResult } from '../exec.js';
import { netnsExists } from '../netns-dir.js';
import { attach, detach, detachAll, shortId } from './attach.js';
import { stopSignalOf } from './signal.js';
import { withMounts } from './netns-mounts.js';
import { WHOAMI_PORT, type Attachment, type ExitListener, type LogOptions, type RunOptions, type Runtime, type StartOptions, type TaskInfo, type TaskSpec } from './types.js';

export interface NetnsRuntimeOptions {
  /** Namespace prefix (e.g. "meshd-", or a test prefix); task namespaces are `<prefix>t-<id>`. */
  prefix: string;
  exec: Exec;
  /** Node name given to tasks as MESHD_NODE. */
  node: string;
  /** Directory for task stdout/stderr logs (`<id>.log`); none = discarded. */
  logDir?: string;
  /**
   * Where `ip netns exec` looks for per-namespace /etc files (default /etc/netns): the task's
   * resolv.conf is written to `<dir>/<ns>/resolv.conf` before the process starts, so the task
   * resolves through the embedded DNS at 127.0.0.11; the directory goes when the task goes.
   */
  etcNetnsDir?: string;
}

/** The task's resolv.conf: the node's embedded DNS (served inside the task namespace), Docker's ndots:0. */
export const TASK_RESOLV_CONF = 'nameserver 127.0.0.11\noptions ndots:0\n';

interface Held {
  spec: TaskSpec;
  attach: readonly Attachment[];
  pid: number | null;
  exited: boolean;
}

/** Compiled whoami server next to this file. */
export const WHOAMI_JS = join(dirname(fileURLToPath(import.meta.url)), 'whoami.js');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class NetnsRuntime implements Runtime {
  readonly kind = 'netns' as const;
  private readonly tasks = new Map<string, Held>();
  private readonly exitListeners = new Set<ExitListener>();

  constructor(private readonly opts: NetnsRuntimeOptions) {}

  /**
   * Exits of the processes this instance started (their 'exit' event). Tasks adopted after an
   * agent restart are not our children: the worker's periodic list() covers those.
   */
  onExit(cb: ExitListener): () => void {
    this.exitListeners.add(cb);
    return () => this.exitListeners.delete(cb);
  }

  private get etcDir(): string {
    return this.opts.etcNetnsDir ?? '/etc/netns';
  }

  taskNs(taskId: string): string {
    return `${this.opts.prefix}t-${shortId(taskId)}`;
  }

  async start(task: TaskSpec, list: readonly Attachment[], opts: StartOptions = {}): Promise<TaskInfo> {
    const ns = this.taskNs(task.id);
    if (list.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: no network attachment`);
    const a = list[0]!;
    if ((task.argv === undefined) === (task.builtin === undefined)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: give exactly one of argv or builtin`);
    }
    if (task.argv && task.argv.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: empty argv`);
    if (netnsExists(ns) || this.tasks.has(task.id)) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id} already exists (${ns})`);
    // Bind/tmpfs mounts: made in the task's own mount namespace before its program (netns-mounts.ts).
    const argv = withMounts(task.id, task.container?.mounts, task.builtin === 'whoami' ? [process.execPath, WHOAMI_JS] : [...(task.argv ?? [])]);
    try {
      // The namespace and its plumbing in one process (attach.ts); a failure after `netns add` is undone below.
      await attach(this.opts.exec, task.id, ns, list, ['netns', 'add', ns]);
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        MESHD_TASK_ID: task.id, MESHD_TASK_NAME: task.name, MESHD_TASK_IP: a.ip, MESHD_NODE: this.opts.node,
        MESHD_WHOAMI_PORT: String(WHOAMI_PORT),
        ...task.env,
      };
      // iproute2 bind-mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf for `ip netns exec`.
      mkdirSync(join(this.etcDir, ns), { recursive: true });
      writeFileSync(join(this.etcDir, ns, 'resolv.conf'), TASK_RESOLV_CONF);
      await opts.beforeApp?.(ns);
      const pid = await this.spawnDetached(task.id, ns, argv, env, task.container?.workdir);
      const held: Held = { spec: task, attach: list, pid, exited: false };
      this.tasks.set(task.id, held);
      return { id: task.id, name: task.name, netns: ns, pid, running: true, ip: a.ip };
    } catch (e) {
      await detach(this.opts.exec, task.id, list);
      if (netnsExists(ns)) await this.opts.exec.run('ip', ['netns', 'del', ns]);
      rmSync(join(this.etcDir, ns), { recursive: true, force: true });
      throw e;
    }
  }

  /** `cwd`: the service's --workdir (`ip netns exec` keeps the directory it is started in). */
  private spawnDetached(taskId: string, ns: string, argv: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<number> {
    let fd: number | 'ignore' = 'ignore';
    if (this.opts.logDir) {
      mkdirSync(this.opts.logDir, { recursive: true });
      fd = openSync(join(this.opts.logDir, `${taskId}.log`), 'a');
    }
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], { detached: true, stdio: ['ignore', fd, fd], env, ...(cwd !== undefined ? { cwd } : {}) });
      if (typeof fd === 'number') closeSync(fd);
      child.once('error', (e) => reject(new MeshError('MESHD_EXEC_FAILED', `cannot start task ${taskId}: ${e.message}`, { argv }, { cause: e })));
      child.once('spawn', () => {
        child.unref();
        resolve(child.pid ?? -1);
      });
      child.once('exit', (code) => {
        const h = this.tasks.get(taskId);
        if (!h || h.pid !== child.pid) return; // stopped (forgotten) or a later start of the same id
        h.exited = true;
        for (const cb of this.exitListeners) cb(taskId, code);
      });
    });
  }

  async stop(taskId: string, graceMs: number, signal?: string): Promise<void> {
    const ns = this.taskNs(taskId);
    const held = this.tasks.get(taskId);
    const sig = stopSignalOf(signal ?? held?.spec.stopSignal);
    const pids = new Set(await this.pids(ns));
    if (held?.pid && alive(held.pid)) pids.add(held.pid);
    for (const p of pids) this.signal(p, sig);
    const deadline = Date.now() + Math.max(0, graceMs);
    while ([...pids].some(alive) && Date.now() < deadline) await sleep(20);
    for (const p of pids) if (alive(p)) this.signal(p, 'SIGKILL');
    const killDeadline = Date.now() + 2000;
    while ([...pids].some(alive) && Date.now() < killDeadline) await sleep(20);
    if (held) await detach(this.opts.exec, taskId, held.attach);
    else await detachAll(this.opts.exec, ns); // adopted after a restart: the sandboxes are not known
    if (netnsExists(ns)) await this.opts.exec.check('ip', ['netns', 'del', ns]);
    rmSync(join(this.etcDir, ns), { recursive: true, force: true });
    this.tasks.delete(taskId);
  }

  private signal(pid: number, sig: NodeJS.Signals | number): void {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone: that is the goal */
    }
  }

  async list(): Promise<TaskInfo[]> {
    const prefix = `${this.opts.prefix}t-`;
    const names = (await this.nsList()).filter((n) => n.startsWith(prefix));
    const out: TaskInfo[] = [];
    for (const ns of names) {
      const held = [...this.tasks.values()].find((h) => this.taskNs(h.spec.id) === ns);
      const pids = await this.pids(ns);
      const addr = await this.opts.exec.run('ip', ['-j', '-n', ns, '-4', 'addr', 'show', 'dev', 'eth0']);
      let ip: string | null = null;
      if (addr.code === 0) {
        const j = JSON.parse(addr.stdout || '[]') as { addr_info?: { local?: string }[] }[];
        ip = j[0]?.addr_info?.[0]?.local ?? null;
      }
      const pid = held?.pid && alive(held.pid) ? held.pid : (pids[0] ?? null);
      out.push({ id: held?.spec.id ?? ns.slice(prefix.length), name: held?.spec.name ?? '', netns: ns, pid, running: pids.length > 0, ip });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /**
   * The task's log file (stdout and stderr as written), through `tail` (`-F` to follow: destroy
   * the stream to stop it). Needs `logDir`; no timestamps (the file has none).
   */
  async logs(taskId: string, o: LogOptions = {}): Promise<Readable> {
    if (!this.opts.logDir) throw new MeshError('MESHD_NOT_FOUND', `no logs for task ${taskId}: the netns runtime runs without a log directory`);
    if (o.timestamps) throw new MeshError('MESHD_BAD_ARGUMENT', 'the netns runtime keeps no timestamps in its task logs');
    shortId(taskId); // validates: the id becomes a file name
    const file = join(this.opts.logDir, `${taskId}.log`);
    if (!existsSync(file)) throw new MeshError('MESHD_NOT_FOUND', `no logs for task ${taskId}`);
    const child = spawn('tail', ['-n', o.tail !== undefined ? String(Math.max(0, o.tail)) : '+1', ...(o.follow ? ['-F'] : []), file], { stdio: ['ignore', 'pipe', 'ignore'] });
    const out = child.stdout;
    out.once('close', () => child.kill('SIGTERM'));
    return out;
  }

  async exec(taskId: string, argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
    const ns = this.taskNs(taskId);
    if (!netnsExists(ns)) throw new MeshError('MESHD_NOT_FOUND', `no such task: ${taskId}`);
    if (argv.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', 'exec needs a command');
    const [cmd, ...args] = argv as [string, ...string[]];
    return this.opts.exec.run(cmd, args, { netns: ns, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}), ...(opts.input !== undefined ? { input: opts.input } : {}) });
  }

  private async nsList(): Promise<string[]> {
    const out = await this.opts.exec.check('ip', ['netns', 'list']);
    return out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '');
  }

  private async pids(ns: string): Promise<number[]> {
    const r = await this.opts.exec.run('ip', ['netns', 'pids', ns]);
    if (r.code !== 0) return [];
    return r.stdout.split(/\s+/).filter((x) => /^\d+$/.test(x)).map(Number);
  }
}
