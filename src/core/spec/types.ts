/**
 * The manager's object model: services (desired state), nodes, and tasks (one
 * scheduled instance of a service). Shapes follow swarmkit's api types closely
 * enough that the `docker service` mental model carries over, trimmed to what the
 * mesh needs. All times are milliseconds on the manager's monotonic clock; all
 * sizes are bytes; CPU is in milli-CPUs (1000 = one core).
 */
import type { HealthcheckSpec } from '../health/spec.js';
import type { HealthStatus } from '../health/policy.js';
import type { ContainerConfig } from './container.js';
import type { FileRef } from './files.js';
import type { ProxyVersion } from '../proxy-protocol.js';

export type PortProto = 'tcp' | 'udp';
/** `ingress`: routing mesh on every node; `host`: bound only on the node running the task. */
export type PublishMode = 'ingress' | 'host';
/** `local` keeps the client IP by only balancing to tasks on the receiving node. */
export type PortPolicy = 'cluster' | 'local';

export interface PortSpec {
  /** Port published on nodes; 0 means none (only `target` inside the task). */
  published: number;
  target: number;
  proto: PortProto;
  mode: PublishMode;
  policy: PortPolicy;
  /**
   * PROXY protocol header (haproxy's v1 text / v2 binary) written in front of each connection by
   * the receiving node's agent, so the task learns the real client address behind the mesh's
   * masquerade. Only for `mode: ingress`, `policy: cluster`, TCP, a published port.
   */
  proxyProtocol?: ProxyVersion;
}

export interface Resources {
  /** Milli-CPUs (1000 = 1 core). */
  cpuMilli: number;
  memoryBytes: number;
}

export type RestartCondition = 'any' | 'on-failure' | 'none';
export interface RestartPolicy {
  condition: RestartCondition;
  /** Wait between the task ending and its replacement starting. */
  delayMs: number;
  /** 0 = unlimited. Counted within `windowMs` (0 = window is forever). */
  maxAttempts: number;
  windowMs: number;
}

export type FailureAction = 'pause' | 'continue' | 'rollback';
export type UpdateOrder = 'stop-first' | 'start-first';
export interface UpdateConfig {
  /** Slots updated at once; 0 = all at once (swarmkit's meaning). */
  parallelism: number;
  /** Pause of each update worker between two slots. */
  delayMs: number;
  failureAction: FailureAction;
  /** After a new task runs, a failure within this period still counts against the update. */
  monitorMs: number;
  /** Fraction 0..1 of updated slots allowed to fail before `failureAction` applies. */
  maxFailureRatio: number;
  order: UpdateOrder;
}

export interface PlacementPreference {
  /** Spread over the values of this descriptor, e.g. `node.labels.zone`. */
  spread: string;
}

export type ServiceMode = { replicated: { replicas: number } } | { global: Record<string, never> };

/**
 * How a task runs: `docker` runs the service's image in the Docker Engine; `netns` (built in)
 * runs the command from the host's filesystem in its own network namespace, the image being
 * only a label. Chosen automatically when a spec names none (src/core/spec/runtime.ts).
 */
export type RuntimeKind = 'netns' | 'docker';
export const RUNTIME_KINDS: readonly RuntimeKind[] = ['netns', 'docker'];

export interface ServiceSpec {
  /** DNS label, at most 63 chars: [a-z0-9-], not starting or ending with '-'. */
  name: string;
  image: string;
  /** Absent: automatic (image `whoami` → netns, any other image → docker), see resolveRuntime. */
  runtime?: RuntimeKind | undefined;
  command?: string[] | undefined;
  env: Record<string, string>;
  mode: ServiceMode;
  endpointMode: 'vip' | 'dnsrr';
  /**
   * Balancing of new connections to this service, on every node and both dataplanes (issue 19):
   * `algorithm` (`--lb-algorithm`, default random), `locality` (`--lb-locality`, default none).
   * Not part of the task spec: changing it re-programs the load balancers, it replaces no task.
   */
  lb?: { algorithm?: 'random' | 'round-robin' | 'source-hash' | undefined; locality?: 'none' | 'node' | 'zone' | undefined } | undefined;
  ports: PortSpec[];
  /** Network names the tasks attach to (none: `ingress`). */
  networks: string[];
  /**
   * Extra DNS names of the service per network name (docker's `Networks[].Aliases`): each
   * resolves like the service itself on that network, `tasks.<alias>` included. Every key
   * is one of `networks`; absent when there are none. The API also takes docker's long form
   * `networks: [{ target, aliases }]`, normalized to this (see validate.ts).
   */
  networkAliases?: Record<string, string[]> | undefined;
  /**
   * Health check (docker's HEALTHCHECK): absent = the image's own (docker runtime) or none
   * (netns); a task with a check is a backend and a DNS answer only once healthy.
   */
  healthcheck?: HealthcheckSpec | undefined;
  /** Time a task gets after its stop signal before SIGKILL (ms); absent: the agent's default (5 s, docker's 10 s). */
  stopGracePeriodMs?: number | undefined;
  /** Signal that asks a task to stop (docker's `--stop-signal`); absent: the image's STOPSIGNAL, else SIGTERM. */
  stopSignal?: string | undefined;
  /** Constraint expressions, e.g. `node.labels.zone==a`, all must hold. */
  constraints: string[];
  /** Hierarchical: the first preference splits the nodes, the next one splits each group, ... */
  preferences: PlacementPreference[];
  /** Replicated only: at most this many tasks of the service on one node (docker's `--replicas-max-per-node`); absent/0: no limit. */
  maxReplicasPerNode?: number | undefined;
  /** Service labels (docker's `--label`, Compose `deploy.labels`): shown by inspect, not given to tasks. */
  labels?: Record<string, string> | undefined;
  /** Mounts, container labels, hostname, workdir, user, entrypoint, DNS options, read-only, init (container.ts). */
  container?: ContainerConfig | undefined;
  /**
   * Services whose tasks may open connections to this service's tasks (issue #19; enforced by
   * each node's policy subsystem in the task's namespace, src/core/policy). Absent: open, unless
   * a network is `defaultDeny` (then nobody on that network); `[]`: nobody. Not part of the
   * task spec: a change reprograms filters in place, it never replaces tasks.
   */
  allowFrom?: string[] | undefined;
  /** Reservations: the scheduler only places a task where this much is still unreserved. */
  resources: Resources;
  /** Limits the runtime enforces (docker: HostConfig NanoCpus/Memory); 0 = none. Absent: none. */
  limits?: Resources | undefined;
  /** Secrets / configs the tasks get as read-only files (files.ts); a change replaces tasks (rotation). */
  secrets?: FileRef[] | undefined;
  configs?: FileRef[] | undefined;
  restartPolicy: RestartPolicy;
  updateConfig: UpdateConfig;
  rollbackConfig: UpdateConfig;
}

/** A service as stored: a spec, its version (bumped on every update) and the previous spec for rollback. */
export interface Service {
  id: string;
  version: number;
  spec: ServiceSpec;
  previous?: { version: number; spec: ServiceSpec } | undefined;
}

export type NodeRole = 'manager' | 'worker';
/** `pause`: keep running tasks, take no new ones; `drain`: move every task away. */
export type NodeAvailability = 'active' | 'pause' | 'drain';
/**
 * From gossip membership (swarmkit's node states): `ready` while alive or suspect;
 * `disconnected` while gossip holds it dead but the manager still waits out
 * `manager.nodeDownGraceMs` — its tasks stay where they are (they may well be serving), but
 * it is given no new task, since nothing sent to it can start until it is back; `down` after.
 */
export type NodeState = 'ready' | 'disconnected' | 'down';

export interface Node {
  id: string;
  hostname: string;
  role: NodeRole;
  availability: NodeAvailability;
  state: NodeState;
  labels: Record<string, string>;
  /** Total schedulable resources of the node. */
  resources: Resources;
  /**
   * Runtimes the node reported (its agent detects them); absent on records written before
   * nodes reported them, which means `['netns']` (see nodeRuntimes).
   */
  runtimes?: RuntimeKind[] | undefined;
  /** The Docker Engine the node reported, when it has the docker runtime. */
  engine?: EngineInfo | undefined;
  /** OS and architecture the node reported (`node.platform.os/arch` constraints); absent: never reported. */
  platform?: Platform | undefined;
  /**
   * When the node's description (runtimes, engine) last changed (manager clock, ms): images
   * reported missing on the node before then are forgotten (a new engine may have them).
   */
  descriptionAt?: number | undefined;
}

/** A Docker Engine as `GET /version` describes it. */
export interface EngineInfo {
  /** Engine version, e.g. `20.10.24+dfsg1`. */
  version: string;
  /** Engine API version, e.g. `1.41`. */
  apiVersion: string;
  /** The engine's labels (`GET /info` Labels, `k=v`), for `engine.labels.KEY` constraints. */
  labels?: Record<string, string> | undefined;
}

/** A node's platform as docker shows it: `os` like `linux`, `arch` like `x86_64` (uname -m). */
export interface Platform {
  os: string;
  arch: string;
}

/** Task lifecycle, in order; the last five are terminal. */
export const TASK_STATES = ['new', 'pending', 'assigned', 'running', 'failed', 'complete', 'shutdown', 'rejected', 'orphaned'] as const;
export type TaskState = (typeof TASK_STATES)[number];
/**
 * What the manager wants of the task. `ready`: created but must not start yet (stop-first
 * update waiting for the old task to stop); `running`; `shutdown`: stop it.
 */
export type DesiredState = 'ready' | 'running' | 'shutdown';

/** The part of a service spec a task is created from (shared by reference between tasks). */
export interface TaskSpec {
  image: string;
  /** As ServiceSpec.runtime (absent: automatic). */
  runtime?: RuntimeKind | undefined;
  command?: string[] | undefined;
  env: Record<string, string>;
  networks: string[];
  /** As ServiceSpec.networkAliases: an alias change replaces tasks (their endpoint records carry the names). */
  networkAliases?: Record<string, string[]> | undefined;
  ports: PortSpec[];
  /** As ServiceSpec.healthcheck: a changed check replaces tasks (docker's behaviour). */
  healthcheck?: HealthcheckSpec | undefined;
  /** As ServiceSpec (a change replaces tasks, as in docker). */
  stopGracePeriodMs?: number | undefined;
  stopSignal?: string | undefined;
  constraints: string[];
  preferences: PlacementPreference[];
  /** As ServiceSpec (a change replaces tasks, as in docker). */
  maxReplicasPerNode?: number | undefined;
  container?: ContainerConfig | undefined;
  resources: Resources;
  /** As ServiceSpec.limits. */
  limits?: Resources | undefined;
  /** As ServiceSpec. */
  secrets?: FileRef[] | undefined;
  configs?: FileRef[] | undefined;
}

export interface TaskTimestamps {
  created: number;
  /** Last change of `state`. */
  updated: number;
}

export interface Task {
  id: string;
  serviceId: string;
  /** Replicated services: the slot (1-based) this task fills. Global services: undefined. */
  slot?: number | undefined;
  /** Node the task is (to be) on; global tasks have it from creation, replicated ones after scheduling. */
  nodeId?: string | undefined;
  specVersion: number;
  spec: TaskSpec;
  desiredState: DesiredState;
  state: TaskState;
  /** Why the task is in its state (scheduler reason, exit error, ...). */
  message?: string | undefined;
  /**
   * Last error its node reported (kept when `message` moves on, e.g. to `restarting`): the
   * scheduler reads `image X not present on node N` from it (src/core/scheduler/image.ts).
   */
  error?: string | undefined;
  timestamps: TaskTimestamps;
  /** Health its node last reported (tasks with a check only); `service ps` shows `running (healthy)`. */
  health?: HealthStatus | undefined;
  /** Times of the restarts that led to this task, within the restart window (oldest first). */
  restarts?: number[] | undefined;
}

/**
 * Running and serving: a task with a health check counts only once healthy (swarm keeps such a
 * task STARTING until then), so a rolling update waits for it and `service ls` does not count it.
 */
export function isServing(t: Pick<Task, 'state' | 'health'>): boolean {
  return t.state === 'running' && t.health !== 'starting' && t.health !== 'unhealthy';
}

export function isTerminal(s: TaskState): boolean {
  return s === 'failed' || s === 'complete' || s === 'shutdown' || s === 'rejected' || s === 'orphaned';
}

/** The task spec a service's tasks are created from. */
export function taskSpecOf(spec: ServiceSpec): TaskSpec {
  return {
    image: spec.image,
    ...(spec.runtime !== undefined ? { runtime: spec.runtime } : {}),
    command: spec.command,
    env: spec.env,
    networks: spec.networks,
    ...(spec.networkAliases !== undefined ? { networkAliases: spec.networkAliases } : {}),
    ports: spec.ports,
    ...(spec.healthcheck !== undefined ? { healthcheck: spec.healthcheck } : {}),
    ...(spec.stopGracePeriodMs !== undefined ? { stopGracePeriodMs: spec.stopGracePeriodMs } : {}),
    ...(spec.stopSignal !== undefined ? { stopSignal: spec.stopSignal } : {}),
    constraints: spec.constraints,
    preferences: spec.preferences,
    ...(spec.maxReplicasPerNode ? { maxReplicasPerNode: spec.maxReplicasPerNode } : {}),
    ...(spec.container !== undefined ? { container: spec.container } : {}),
    resources: spec.resources,
    ...(spec.limits !== undefined ? { limits: spec.limits } : {}),
    ...(spec.secrets?.length ? { secrets: spec.secrets } : {}),
    ...(spec.configs?.length ? { configs: spec.configs } : {}),
  };
}

export function isGlobal(spec: ServiceSpec): boolean {
  return 'global' in spec.mode;
}

export function replicasOf(spec: ServiceSpec): number {
  return 'replicated' in spec.mode ? spec.mode.replicated.replicas : 0;
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => [k, canonical(o[k])]);
  }
  return v;
}

/**
 * Same task spec (content, not version)? A service update that changes nothing a task
 * runs with (e.g. only replicas or updateConfig) must not replace tasks (Docker's
 * behaviour; `force` redeploys anyway).
 */
export function taskSpecEqual(a: TaskSpec, b: TaskSpec): boolean {
  return a === b || JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}
