/**
 * The worker's public shapes: its options (wired by the agent's composition root) and the view
 * of a task that `GET /v1/tasks` answers and the manager link reports. Kept apart from
 * worker.ts so that file stays one concern (converging tasks).
 */
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import type { Runtime, TaskInfo } from '../../adapters/runtime/types.js';
import type { TimerClock } from '../../core/clock.js';
import type { HealthStatus } from '../../core/health/policy.js';
import type { DrainResult, DrainWait } from '../drain/wait.js';
import type { PortRef, Readiness } from './ready.js';
import type { GossipPort, OverlaySubsystem } from '../overlay/overlay.js';

import type { HeldTask, TaskState } from '../../core/worker/converge.js';
import type { Assignment } from '../../core/assignments.js';
import type { TaskFilesFetch } from './task-files.js';

export type { TaskState };

/** A task this node holds: the plan's view (HeldTask) plus what the shell needs to act on it. */
export interface Held extends HeldTask {
  a: Assignment;
  info: TaskInfo | null;
  error: string | null;
  adopted: boolean;
  /**
   * Its process died while it was a backend (core drainsOnExit): published `draining` at once and
   * this wait for the drain acks started in the same turn (acks that land before a later wait
   * began would never wake it: it would sit until the waiter's timeout); the reap awaits it before
   * the runtime removes the sandbox.
   */
  deadDrain?: Promise<void>;
  /** Exit code when its process exited by itself (standalone containers show it). */
  exitCode?: number | null;
  /** How its start went, step by step (set once it runs; StartTiming below). */
  timing?: StartTiming;
}

export interface WorkerOptions {
  nodeName: string;
  nodeIp: string;
  dataDir: string;
  /** Namespace/container prefix (lab: mlab-<lab>-<node>-, else meshd-). */
  prefix: string;
  exec: Exec;
  /** Time and timers (the converge loop and its periodic retry run on it). */
  clock: TimerClock;
  log: Logger;
  gossip: GossipPort;
  overlay: OverlaySubsystem;
  /** Confirms drains through the tables (acks from every live member); see drain-wait.ts. */
  drain?: DrainWait;
  /** Fixed drain period when `drain` is not given (ms), default 2000. */
  drainMs?: number;
  /** SIGTERM → SIGKILL grace when stopping a task (ms), default 5000. */
  stopGraceMs?: number;
  /**
   * Longest wait for a started task to listen on its target ports before its records say
   * `running` (ms), default 10000; 0 disables. See worker-ready.ts.
   */
  readyTimeoutMs?: number;
  /** Readiness probe; default: /proc socket tables for the built-in netns runtime, none otherwise. */
  readiness?: (pid: number, ports: readonly PortRef[], timeoutMs: number) => Promise<Readiness>;
  /** Period of the background converge that retries failed starts (ms), default 5000. */
  retryMs?: number;
  /** Local docker image used for docker tasks with image 'whoami' (needs busybox). */
  dockerWhoamiImage?: string;
  /** Docker Engine API socket (default /var/run/docker.sock). */
  dockerSocket?: string;
  /** Local image of the per-task sandbox container (default meshd/sandbox:local). */
  dockerSandboxImage?: string;
  /**
   * Runs when a task's namespace is plumbed, before its process starts (the agent waits for
   * the 127.0.0.11 sockets there); a failure fails the start.
   */
  beforeApp?: (netns: string) => Promise<void>;
  /**
   * Resolves once the load balancer applied every pending change (a standalone container waits
   * for its namespace's VIP rules before its process starts; see worker.ts beforeStandalone).
   */
  lbSettled?: () => Promise<void>;
  /** Fetches a task's secret and config payloads from the manager (the manager link; task-files.ts). */
  taskFiles?: TaskFilesFetch;
  /** Where task secret/config files live (a tmpfs is mounted there); default <dataDir>/task-files. */
  filesDir?: string;
  /** Test seams. */
  netnsRuntime?: Runtime;
  dockerRuntime?: Runtime;
}

export interface TaskView {
  id: string;
  name: string;
  service: string;
  runtime: 'netns' | 'docker';
  state: TaskState;
  desiredState: 'running' | 'shutdown';
  /** network name → address */
  ips: Record<string, string>;
  /** network name → IPv6 address, for the task's networks created with --ipv6 (debug trace of an IPv6 VIP) */
  ips6: Record<string, string>;
  networks: string[];
  netns: string | null;
  container: string | null;
  pid: number | null;
  error: string | null;
  adopted: boolean;
  /** How the task's last drain ended (confirmed drains only): acked by every member, or timed out. */
  drain: { outcome: DrainResult['outcome']; ms: number } | null;
  /** Health of a task with a check (null: no check); `starting` tasks are no backend yet. */
  health: HealthStatus | null;
  /** How long its start took on this node, by step (null: adopted, not started yet, or failed). */
  start: StartTiming | null;
  /** Standalone containers only (`netctl run`): set, with the exit code once the process ended. */
  standalone?: true;
  exitCode?: number | null;
}

/**
 * How long one task's start took on this node, by step (ms; issue 18 item 1: "manager commit →
 * last node" had a part nobody could see — the time between the node receiving its assignment and
 * publishing the task). `queuedMs`: from the list that first assigned it (setAssignments) to the
 * start's first step — the converge it waited for; null for a task held before this agent started.
 * `filesMs`: its secret/config files; `sandboxesMs`: waiting for its networks' sandboxes;
 * `runtimeMs`: the runtime's start (namespace, veths, addresses, process), of which `beforeAppMs`
 * is the agent's own hook (the 127.0.0.11 sockets); `readyMs`: waiting until it serves its target
 * ports. `totalMs`: assignment (or start, when not known) → published running.
 */
export interface StartTiming {
  queuedMs: number | null;
  filesMs: number;
  sandboxesMs: number;
  runtimeMs: number;
  beforeAppMs: number;
  readyMs: number;
  totalMs: number;
}
