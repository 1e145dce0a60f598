/**
 * In-memory Runtime for agent/manager unit tests and --dry-run: records starts/stops,
 * answers exec with a scripted handler. No namespaces, no processes.
 */
import { MeshError } from '../../core/errors.js';
import type { ExecResult } from '../exec.js';
import type { Attachment, RunOptions, Runtime, TaskInfo, TaskSpec } from './types.js';

export class FakeRuntime implements Runtime {
  readonly kind = 'netns' as const;
  readonly tasks = new Map<string, { spec: TaskSpec; attach: Attachment; pid: number }>();
  readonly stopped: { id: string; graceMs: number }[] = [];
  /** Scripted exec; default: exit 0 with empty output. */
  onExec: (taskId: string, argv: readonly string[]) => ExecResult = () => ({ code: 0, stdout: '', stderr: '' });
  private nextPid = 1000;

  constructor(private readonly prefix = 'fake-') {}

  async start(task: TaskSpec, attach: Attachment): Promise<TaskInfo> {
    if (this.tasks.has(task.id)) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id} already exists`);
    if ((task.argv === undefined) === (task.builtin === undefined)) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${task.id}: give exactly one of argv or builtin`);
    const pid = this.nextPid++;
    this.tasks.set(task.id, { spec: task, attach, pid });
    return this.info(task.id)!;
  }

  async stop(taskId: string, graceMs: number): Promise<void> {
    this.stopped.push({ id: taskId, graceMs });
    this.tasks.delete(taskId);
  }

  async list(): Promise<TaskInfo[]> {
    return [...this.tasks.keys()].sort().map((id) => this.info(id)!);
  }

  async exec(taskId: string, argv: readonly string[], _opts?: RunOptions): Promise<ExecResult> {
    if (!this.tasks.has(taskId)) throw new MeshError('MESHD_NOT_FOUND', `no such task: ${taskId}`);
    return this.onExec(taskId, argv);
  }

  private info(id: string): TaskInfo | undefined {
    const t = this.tasks.get(id);
    return t && { id, name: t.spec.name, netns: `${this.prefix}t-${id.slice(0, 12)}`, pid: t.pid, running: true, ip: t.attach.ip };
  }
}
