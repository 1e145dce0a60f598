/**
 * The worker's HTTP routes on the agent socket: the assignment list (PUT from a manager-less
 * setup, GET for debugging), the task views, exec inside a task, and its logs (streamed).
 */
import type { Router } from '../../adapters/api/server.js';
import { MeshError } from '../../core/errors.js';
import type { Runtime } from '../../adapters/runtime/types.js';
import type { TaskLogStreams } from './task-logs.js';
import type { TaskState, TaskView } from './types.js';

/** What the routes use of the worker (worker.ts implements it; no import back, so no cycle). */
export interface WorkerRoutesHost {
  readonly nodeName: string;
  readonly logStreamsOpen: TaskLogStreams;
  setAssignments(list: unknown): { tasks: number };
  assignments(): unknown;
  tasksView(): TaskView[];
  /** The last view of a task this node held and forgot (the manager took it away), while kept. */
  endedView(ref: string): TaskView | undefined;
  held(id: string): { state: TaskState; runtime: Runtime } | undefined;
}

/** Longest exec a caller may ask for, and the default (ms). */
const EXEC_MAX_MS = 600_000;
const EXEC_DEFAULT_MS = 60_000;

export function registerWorkerRoutes(router: Router, w: WorkerRoutesHost): void {
  /** A task's view by id or name (404 when this node has none); `ended`: also one it forgot, while kept. */
  const find = (ref: string, ended = false): TaskView => {
    const t = w.tasksView().find((x) => x.id === ref || x.name === ref) ?? (ended ? w.endedView(ref) : undefined);
    if (!t) throw new MeshError('MESHD_NOT_FOUND', `no task ${ref} on ${w.nodeName}`);
    return t;
  };
  router.add('PUT', '/v1/assignments', (r) => ({ json: w.setAssignments(r.body) }));
  router.add('GET', '/v1/assignments', () => ({ json: w.assignments() }));
  router.add('GET', '/v1/tasks', () => ({ json: w.tasksView() }));
  // A task this node no longer holds still answers how it ended here for a while (worker keepEnded).
  router.add('GET', '/v1/tasks/:task', (r) => ({ json: find(r.params.task!, true) }));
  // Runs a command INSIDE a task through its runtime (docker: an Engine API exec in the
  // application container, so the image's own filesystem and tools; netns: in its namespace).
  router.add('POST', '/v1/tasks/:task/exec', async (r) => {
    const t = find(r.params.task!);
    const h = w.held(t.id);
    if (!h || (h.state !== 'running' && h.state !== 'draining')) throw new MeshError('MESHD_NOT_READY', `task ${t.name} is ${t.state}`);
    const body = (r.body ?? {}) as { argv?: unknown; input?: unknown; timeoutMs?: unknown };
    if (!Array.isArray(body.argv) || body.argv.length === 0 || !body.argv.every((x) => typeof x === 'string')) throw new MeshError('MESHD_BAD_ARGUMENT', 'exec: argv must be a non-empty list of strings');
    const timeoutMs = typeof body.timeoutMs === 'number' && body.timeoutMs > 0 ? Math.min(body.timeoutMs, EXEC_MAX_MS) : EXEC_DEFAULT_MS;
    const res = await h.runtime.exec(t.id, body.argv as string[], { timeoutMs, ...(typeof body.input === 'string' ? { input: body.input } : {}) });
    return { json: res };
  });
  // The task's output through its runtime, streamed (task-logs.ts); any task the worker holds,
  // also a failed one whose container is still there.
  router.add('GET', '/v1/tasks/:task/logs', (r) => w.logStreamsOpen.handle(r, (ref) => {
    const t = w.tasksView().find((x) => x.id === ref || x.name === ref);
    const h = t && w.held(t.id);
    if (!t || !h) throw new MeshError('MESHD_NOT_FOUND', `no task ${ref} on ${w.nodeName}`);
    return { id: t.id, name: t.name, runtime: h.runtime };
  }));
}
