/**
 * In-memory Runtime for agent/manager unit tests and --dry-run: records starts/stops,
 * answers exec with a scripted handler. No namespaces, no processes.
 */
import { MeshError } from '../../core/errors.js';
import type { ExecResult } from '../exec.js';
import type { Attachment, ExitListener, RunOptions, Runtime, TaskInfo, TaskSpec } from './types.js';

export class FakeRuntime implements Runtime {
  readonly kind = 'netns' as const;
  readonly tasks = new Map<string, { spec: TaskSpec; attach: Attachment; attachments: readonly Attachment[]; pid: number }>();
  readonly stopped: { id: string; graceMs: number; signal?: string }[] = [];
  private readonly exitListeners = new Set<ExitListener>();
  /** Scripted exec; default: exit 0 with empty output. */
  onExec: (taskId: string, argv: readonly string[]) => ExecResult = () => ({ code: 0, stdout: '', stderr: '' });
  private nextPid = 1000;

  constructor(private readonly prefix = 'fake-') {}

  async start(task: TaskSpec, attachments: readonly Attachment[]): Promise<TaskInfo> {
    const attach = attachments[0];
    if (!attach) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: no network attachment`);
    if (this.tasks.has(task.id)) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id} already exists`);
    if ((task.argv === undefined) === (task.builtin === undefined)) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: give exactly one of argv or builtin`);
    const pid = this.nextPid++;
    this.tasks.set(task.id, { spec: task, attach, attachments, pid });
    return this.info(task.id)!;
  }

  async stop(taskId: string, graceMs: number, signal?: string): Promise<void> {
    this.stopped.push({ id: taskId, graceMs, ...(signal !== undefined ? { signal } : {}) });
    this.tasks.delete(taskId);
    this.exitedIds.delete(taskId);
  }

  async list(): Promise<TaskInfo[]> {
    return [...this.tasks.keys()].sort().map((id) => this.info(id)!);
  }

  async exec(taskId: string, argv: readonly string[], _opts?: RunOptions): Promise<ExecResult> {
    if (!this.tasks.has(taskId)) throw new MeshError('MESHD_NOT_FOUND', `no such task: ${taskId}`);
    return this.onExec(taskId, argv);
  }

  onExit(cb: ExitListener): () => void {
    this.exitListeners.add(cb);
    return () => this.exitListeners.delete(cb);
  }

  /** Test hook: the task's process exits by itself (it stays listed as not running until stopped). */
  exit(taskId: string, code: number | null = 1): void {
    this.exitedIds.add(taskId);
    for (const cb of this.exitListeners) cb(taskId, code);
  }

  private readonly exitedIds = new Set<string>();

  private info(id: string): TaskInfo | undefined {
    const t = this.tasks.get(id);
    return t && { id, name: t.spec.name, netns: `${this.prefix}t-${id.slice(0, 12)}`, pid: t.pid, running: !this.exitedIds.has(id), ip: t.attach.ip };
  }
}
