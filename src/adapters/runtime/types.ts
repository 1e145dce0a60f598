/**
 * Runtime: runs a task's process in its own network namespace and plumbs it into one
 * overlay network sandbox per attachment (eth0, eth1, … in attachment order). One interface
 * for the `netns` runtime (built in) and the `docker` runtime; both pass
 * test/integration/overlay/runtime-compliance.ts.
 */
import type { Readable } from 'node:stream';
import type { HealthStatus } from '../../core/health/policy.js';
import type { HealthcheckSpec } from '../../core/health/spec.js';
import type { ExecResult } from '../exec.js';
import type { ContainerConfig } from '../../core/spec/container.js';

export interface TaskSpec {
  /** Unique task id ([A-Za-z0-9_-]); namespace/veth names use its first 12 characters. */
  id: string;
  name: string;
  /** Program and arguments; exactly one of argv / builtin. */
  argv?: readonly string[];
  /** Built-in demo program: `whoami` answers `GET /` with task, ip and node lines. */
  builtin?: 'whoami';
  env?: Readonly<Record<string, string>>;
  /** Docker image of the task (docker runtime; never pulled). Absent: the runtime's default image. */
  image?: string;
  /**
   * Health check (normalized, core/health/spec.ts). docker: handed to the Engine
   * (Config.Healthcheck, merged by it with the image's HEALTHCHECK; `disable` → Test NONE).
   * netns: not run by the runtime — the agent probes through exec() on its own schedule.
   */
  healthcheck?: HealthcheckSpec;
  /** Signal that asks the task to stop (default SIGTERM); stop() escalates to SIGKILL after the grace. */
  stopSignal?: string;
  /** Resource limits (docker: HostConfig NanoCpus/Memory); the manager never sends them to netns tasks. */
  limits?: { cpuMilli: number; memoryBytes: number };
  /**
   * Container settings with the hostname already rendered (core/spec/container.ts). docker:
   * all of them (mounts, labels, workdir, user, entrypoint, read-only, init on the application
   * container; hostname and DNS options on the sandbox, whose UTS namespace and resolv.conf the
   * application shares). netns: `workdir` and bind/tmpfs `mounts` (in the task's own mount
   * namespace, netns-mounts.ts) — the manager refuses the rest for netns services.
   */
  container?: ContainerConfig;
}

export interface Attachment {
  /** Network sandbox namespace holding the bridge (overlay; unused with `macvlanParent`). */
  sandboxNs: string;
  /**
   * macvlan network: the interface of the node (in the agent's own namespace) whose macvlan
   * sub-interface, mode bridge, becomes the task's eth<i>; no sandbox, no bridge.
   */
  macvlanParent?: string;
  /** Bridge in the sandbox (br0). */
  bridge: string;
  /** Task address and prefix length, e.g. 10.0.1.5 / 24. */
  ip: string;
  prefix: number;
  gateway: string;
  /**
   * Dual stack (issue #19 item 2): the task's IPv6 address and prefix length on this network,
   * added with `nodad` (usable at once: IPAM already made it unique). Both or neither.
   */
  ip6?: string;
  prefix6?: number;
  mac: string;
  /** Overlay MTU (bytes) for eth0 and the sandbox end; macvlan: 0 keeps the parent's. */
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
  /**
   * Ports the image declares (docker: `EXPOSE`, Config.ExposedPorts). The worker adds them to the
   * task's endpoint records so the service VIP forwards them, as swarm's VIP does for any port a
   * task listens on; a port neither exposed nor declared with `-p` is not forwarded by the VIP.
   */
  exposed?: Array<{ proto: 'tcp' | 'udp'; port: number }>;
  /**
   * Health as the runtime itself checks it (docker: State.Health, the spec's or the image's
   * check); absent when the runtime runs no check for this task.
   */
  health?: HealthStatus;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
}

export interface StartOptions {
  /**
   * Runs once the task's namespace is fully plumbed and before the application starts (the
   * agent waits here for the 127.0.0.11 sockets, so the application's first lookup answers).
   */
  beforeApp?: (netns: string) => Promise<void>;
}

export interface LogOptions {
  /** Last N lines only. */
  tail?: number;
  /** Keep the stream open and deliver new output until the caller destroys it. */
  follow?: boolean;
  /** Prefix each line with its RFC 3339 timestamp (docker's `-t`). */
  timestamps?: boolean;
}

/** Called when a task's application exits by itself (or is killed); exitCode null when unknown. */
export type ExitListener = (taskId: string, exitCode: number | null) => void;
/** Called when the runtime's own health check of a task changes status (docker: health_status events). */
export type HealthListener = (taskId: string, status: HealthStatus, detail?: string) => void;

export interface Runtime {
  readonly kind: 'netns' | 'docker';
  /**
   * Creates the task namespace, plumbs one interface per attachment (eth0, eth1, … in order;
   * default route via the first one's gateway), then starts the process detached. At least
   * one attachment.
   */
  start(task: TaskSpec, attachments: readonly Attachment[], opts?: StartOptions): Promise<TaskInfo>;
  /** `signal` (default the task's stop signal, else SIGTERM), SIGKILL after graceMs, then removes the veths and namespace. Idempotent. */
  stop(taskId: string, graceMs: number, signal?: string): Promise<void>;
  /** Tasks this runtime holds, read from the kernel (survives an agent restart). */
  list(): Promise<TaskInfo[]>;
  /** Runs argv inside the task's network namespace and returns its result (any exit code). */
  exec(taskId: string, argv: readonly string[], opts?: RunOptions): Promise<ExecResult>;
  /** The task's output (stdout and stderr in order); a follow stream ends when the caller destroys it. */
  logs?(taskId: string, opts?: LogOptions): Promise<Readable>;
  /** Registers a listener for task exits noticed at once (docker: the events stream); returns an unsubscribe. */
  onExit?(cb: ExitListener): () => void;
  /** Registers a listener for health changes of checks the runtime runs itself (docker); returns an unsubscribe. */
  onHealth?(cb: HealthListener): () => void;
  /** Releases clients and streams (agent shutdown). Tasks keep running. */
  close?(): Promise<void>;
}

/** Default port of the built-in whoami server. */
export const WHOAMI_PORT = 80;
