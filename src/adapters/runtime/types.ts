/**
 * Runtime: runs a task's process in its own network namespace and plumbs it into an
 * overlay network's sandbox. One interface for the `netns` runtime (built in) and the
 * `docker` runtime (later); both pass test/integration/overlay/runtime-compliance.ts.
 */
import type { ExecResult } from '../exec.js';

export interface TaskSpec {
  /** Unique task id ([A-Za-z0-9_-]); namespace/veth names use its first 12 characters. */
  id: string;
  name: string;
  /** Program and arguments; exactly one of argv / builtin. */
  argv?: readonly string[];
  /** Built-in demo program: `whoami` answers `GET /` with task, ip and node lines. */
  builtin?: 'whoami';
  env?: Readonly<Record<string, string>>;
}

export interface Attachment {
  /** Network sandbox namespace holding the bridge. */
  sandboxNs: string;
  /** Bridge in the sandbox (br0). */
  bridge: string;
  /** Task address and prefix length, e.g. 10.0.1.5 / 24. */
  ip: string;
  prefix: number;
  gateway: string;
  mac: string;
  /** Overlay MTU (bytes) for eth0 and the sandbox end. */
  mtu: number;
}

export interface TaskInfo {
  id: string;
  name: string;
  /** Named network namespace of the task. */
  netns: string;
  /** Main process id, or null when unknown (adopted after a restart) or exited. */
  pid: number | null;
  running: boolean;
  ip: string | null;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
}

export interface Runtime {
  readonly kind: 'netns' | 'docker';
  /** Creates the task namespace, attaches it, starts the process detached. */
  start(task: TaskSpec, attach: Attachment): Promise<TaskInfo>;
  /** SIGTERM, SIGKILL after graceMs, then removes the veth and namespace. Idempotent. */
  stop(taskId: string, graceMs: number): Promise<void>;
  /** Tasks this runtime holds, read from the kernel (survives an agent restart). */
  list(): Promise<TaskInfo[]>;
  /** Runs argv inside the task's network namespace and returns its result (any exit code). */
  exec(taskId: string, argv: readonly string[], opts?: RunOptions): Promise<ExecResult>;
}

/** Default port of the built-in whoami server. */
export const WHOAMI_PORT = 80;
