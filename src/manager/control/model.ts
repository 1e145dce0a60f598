/**
 * The control plane's records in the store (networks, services, tasks), the validation of
 * the API bodies that change them, and what the API shows of them. Store keys live in the
 * namespaces `networks/`, `services/` and `tasks/` next to the manager's own `nodes/` and
 * `cluster/` (src/manager/model.ts).
 */
import { z } from 'zod';
import { MeshError } from '../../core/errors.js';
import type { Service, ServiceSpec, Task } from '../../core/spec/types.js';
import { isGlobal, isServing, replicasOf, taskSpecEqual, taskSpecOf } from '../../core/spec/types.js';
import { dnsLabelSchema } from '../../core/spec/validate.js';
import { nodeDescriptionSchema, resolveRuntime } from '../../core/spec/runtime.js';
import type { UpdateState } from '../../core/orchestrator/actions.js';
import { MAX_CANARY_PERCENT, MIN_CANARY_PERCENT, recordWeights, type CanaryRecord } from '../../core/orchestrator/canary.js';

export const CKEYS = {
  network: (id: string): string => `networks/${id}`,
  networks: 'networks/',
  service: (id: string): string => `services/${id}`,
  services: 'services/',
  task: (id: string): string => `tasks/${id}`,
  tasks: 'tasks/',
  /** A node's ingress-sandbox address on the ingress network (routing mesh). */
  sbox: (nodeId: string): string => `ingress-sbox/${nodeId}`,
  sboxes: 'ingress-sbox/',
  /** A standalone container's network attachment (`netctl run`; attachments.ts). */
  attachment: (id: string): string => `attachments/${id}`,
  attachments: 'attachments/',
} as const;

/** The IPAM owner string of a standalone container's attachment addresses. */
export const attachmentOwner = (id: string): string => `attachment:${id}`;

/** A standalone container's network attachment as stored (swarm's network attachment task). */
export interface AttachmentRecord {
  id: string;
  /** Container name (unique in the cluster among attachments and services: it is a DNS name). */
  name: string;
  nodeId: string;
  /** network id → address */
  addresses: Record<string, string>;
  createdAt: number;
}

/** The built-in network that carries published ports (Docker's `ingress`). */
export const INGRESS = 'ingress';
/**
 * Its fixed definition: the agents' load balancer plumbs the ingress sandbox on exactly this
 * network (src/agent/lb/plan.ts INGRESS_NET — keep the two equal), so it is not allocated
 * from the pool like user networks.
 */
export const INGRESS_DEF = { id: 'ingress', subnet: '10.255.0.0/16', gateway: '10.255.0.1', vni: 4096 } as const;

export interface NetworkRecord {
  id: string;
  name: string;
  /** overlay: VXLAN across nodes; macvlan: a sub-interface of each node's `parent` (network-model.ts). */
  driver: 'overlay' | 'macvlan';
  subnet: string;
  gateway: string;
  /**
   * Dual stack (issue #19 item 2, `network create --ipv6`): the IPv6 subnet and gateway, both or
   * neither. Absent on every network made before (they stay IPv4 only, unchanged).
   */
  subnet6?: string | undefined;
  gateway6?: string | undefined;
  /** Allocated for macvlan networks too (unused there: no VXLAN), so every network has one. */
  vni: number;
  mtu?: number | undefined;
  attachable: boolean;
  /** Docker's --ip-range: task and VIP addresses come only from here. */
  ipRange?: string | undefined;
  /** Docker's --aux-address: name → address IPAM never hands out. */
  auxAddresses?: Record<string, string> | undefined;
  /** Docker's --internal: no way out of the network, and no published ports into it. */
  internal?: boolean | undefined;
  labels?: Record<string, string> | undefined;
  /** Driver options (`-o k=v`); macvlan: `parent` (required), `macvlan_mode` (bridge). */
  options?: Record<string, string> | undefined;
  /**
   * `network create --default-deny` (issue #19): a task on it accepts new connections on its
   * address here only from tasks of the services its own service's `allowFrom` names (none when
   * unset). Absent: open unless the service sets allowFrom. Enforced by src/core/policy.
   */
  defaultDeny?: boolean | undefined;
  /** The built-in routing-mesh network. */
  ingress: boolean;
  createdAt: number;
}

export interface ServiceRecord {
  id: string;
  version: number;
  spec: ServiceSpec;
  previous?: { version: number; spec: ServiceSpec } | undefined;
  /** Virtual IP per network id (endpoint mode vip). */
  vips: Record<string, string>;
  /**
   * Dual stack (issue #19 item 2 part 2): the IPv6 VIP per network id, on the service's networks
   * that have an IPv6 subnet (vip mode only). Absent when there is none, so records written before
   * (and services on IPv4-only networks) read and write exactly as they did.
   */
  vips6?: Record<string, string> | undefined;
  createdAt: number;
  updatedAt: number;
  update?: { state: UpdateState; message: string; at: number } | undefined;
  /**
   * A canary in progress (`service update --canary`): `count` tasks of the current spec run beside
   * the old ones and get `percent` % of new connections through per-task LB weights (dispatch.ts).
   * Its slots are stored too, so a manager that starts resumes it held (failover.ts); the weights
   * are not (derived: canary.ts recordWeights).
   */
  canary?: CanaryRecord | undefined;
}

/** A task as stored: the core Task plus its addresses (network id → IP). */
export interface TaskRecord extends Task {
  addresses: Record<string, string>;
  /** IPv6 addresses on dual-stack networks (network id → IPv6); absent on IPv4-only tasks and older records. */
  addresses6?: Record<string, string> | undefined;
  /** The addresses went back to the pool (the task ended); kept for `service ps`. */
  released?: boolean | undefined;
}

export function coreService(r: ServiceRecord): Service {
  return { id: r.id, version: r.version, spec: r.spec, previous: r.previous };
}

/** `netctl network create` body. Names are DNS labels (they become DNS suffixes and gossip network names). */
export const networkCreateSchema = z.object({
  name: dnsLabelSchema,
  driver: z.string().max(64).default('overlay'),
  subnet: z.string().max(32).optional(),
  gateway: z.string().max(15).optional(),
  /** Issue #19 item 2: dual stack; `subnet6` (optional: a ULA /64 is picked) is the IPv6 subnet. */
  ipv6: z.boolean().default(false),
  subnet6: z.string().max(43).optional(),
  mtu: z.number().int().min(68).max(65535).optional(),
  attachable: z.boolean().default(false),
  ipRange: z.string().max(32).optional(),
  auxAddresses: z.record(z.string().max(64), z.string().max(15)).refine((r) => Object.keys(r).length <= 256, 'at most 256 aux addresses').optional(),
  internal: z.boolean().default(false),
  labels: z.record(z.string().min(1).max(256), z.string().max(4096)).refine((r) => Object.keys(r).length <= 64, 'at most 64 labels').optional(),
  options: z.record(z.string().min(1).max(64), z.string().max(256)).refine((r) => Object.keys(r).length <= 16, 'at most 16 options').optional(),
  /** Issue #19: a task on this network accepts connections only from its service's allowFrom (src/core/policy). */
  defaultDeny: z.boolean().default(false),
}).strict();

/** `POST /v1/services/:id/update` body: the full new spec, optional optimistic version and force. */
export const serviceUpdateSchema = z.object({
  spec: z.unknown(),
  version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  force: z.boolean().default(false),
  /** `--canary P%`: start the new spec's tasks beside the old ones with P % of new connections. */
  canary: z.number().int().min(MIN_CANARY_PERCENT).max(MAX_CANARY_PERCENT).optional(),
}).strict();

/**
 * What a node reports: its tasks and their states (the worker's names), and what it is
 * (runtimes, engine; absent from agents that predate it — the record keeps what it had).
 */
export const statusReportSchema = z.object({
  tasks: z.array(z.object({
    id: z.string().regex(/^[A-Za-z0-9]{1,64}$/),
    state: z.enum(['new', 'starting', 'running', 'draining', 'stopped', 'failed']),
    error: z.string().max(4096).nullable().optional(),
    /** Tasks with a health check only. */
    health: z.enum(['starting', 'healthy', 'unhealthy']).nullable().optional(),
  }).passthrough()).max(10_000),
  description: nodeDescriptionSchema.optional(),
}).strict();
export type StatusReport = z.infer<typeof statusReportSchema>;

/**
 * Worker state → task state. `new`/`starting` are still `assigned`; `draining` is still
 * `running` (it serves established connections); `stopped` is `shutdown` when the manager
 * asked for it, `complete` otherwise (the process exited by itself).
 */
export function taskStateFromWorker(s: StatusReport['tasks'][number]['state'], desired: Task['desiredState']): Task['state'] | undefined {
  switch (s) {
    case 'new': return desired === 'shutdown' ? 'shutdown' : undefined; // never started, now unwanted
    case 'starting': return undefined;
    case 'running':
    case 'draining': return 'running';
    case 'stopped': return desired === 'shutdown' ? 'shutdown' : 'complete';
    case 'failed': return 'failed';
  }
}

/** Forward-only task state changes (a late report never resurrects a terminal task). */
export function stateAdvances(from: Task['state'], to: Task['state']): boolean {
  const order: Record<Task['state'], number> = { new: 0, pending: 1, assigned: 2, running: 3, failed: 4, complete: 4, shutdown: 4, rejected: 4, orphaned: 4 };
  return order[to] > order[from];
}

/** Task name as `docker service ps` shows it: `svc.slot` or `svc.<node id>`, then the task id. */
export function taskName(service: string, t: Pick<Task, 'slot' | 'nodeId' | 'id'>): string {
  return `${service}.${t.slot !== undefined ? String(t.slot) : t.nodeId ?? '0'}.${t.id}`;
}

/** The networks a service's tasks attach to (names): its networks, or `ingress` when it names none. */
export function attachNetworks(spec: Pick<ServiceSpec, 'networks'>): string[] {
  return spec.networks.length ? [...spec.networks] : [INGRESS];
}

/**
 * Networks a task gets an address on: its attachments, plus `ingress` when it publishes
 * ports in ingress mode without being attached there (that extra address is plumbed by the
 * node's load balancer as a second interface, not by the worker).
 */
export function addressNetworks(spec: Pick<ServiceSpec, 'networks' | 'ports'>): string[] {
  const nets = attachNetworks(spec);
  if (spec.ports.some((p) => p.mode === 'ingress' && p.published > 0) && !nets.includes(INGRESS)) nets.push(INGRESS);
  return nets;
}

/**
 * Docker's shape: every field present (empty when unset). Scope is `swarm` for macvlan too: the
 * manager defines it once for every node and allocates its addresses (docker's `--scope swarm`
 * macvlan), unlike a plain docker macvlan network that each engine defines for itself.
 */
export function networkView(n: NetworkRecord): Record<string, unknown> {
  return {
    ...n, scope: 'swarm', ipv6: n.subnet6 !== undefined, ipRange: n.ipRange ?? null, auxAddresses: n.auxAddresses ?? {},
    internal: n.internal ?? false, defaultDeny: n.defaultDeny ?? false, labels: n.labels ?? {}, options: n.options ?? {}, createdAt: new Date(n.createdAt).toISOString(),
  };
}

export function serviceView(s: ServiceRecord, tasks: readonly TaskRecord[], netName: (id: string) => string): Record<string, unknown> {
  const mine = tasks.filter((t) => t.serviceId === s.id && t.desiredState !== 'shutdown');
  // Current = same task spec (a replicas-only change bumps the version without replacing tasks).
  const want = taskSpecOf(s.spec);
  const running = mine.filter((t) => isServing(t) && (t.specVersion === s.version || taskSpecEqual(t.spec, want))).length;
  const vips: Record<string, string> = {};
  for (const [id, ip] of Object.entries(s.vips)) vips[netName(id)] = ip;
  const vips6: Record<string, string> = {};
  for (const [id, ip] of Object.entries(s.vips6 ?? {})) vips6[netName(id)] = ip;
  return {
    id: s.id, name: s.spec.name, version: s.version,
    mode: isGlobal(s.spec) ? 'global' : 'replicated',
    replicas: { running, desired: isGlobal(s.spec) ? mine.length : replicasOf(s.spec) },
    image: s.spec.image, runtime: resolveRuntime(s.spec), ports: s.spec.ports, networks: attachNetworks(s.spec), endpointMode: s.spec.endpointMode, vips, ...(Object.keys(vips6).length ? { vips6 } : {}),
    update: s.update ? { ...s.update, at: new Date(s.update.at).toISOString() } : null,
    // The weights shown are derived (the formula dispatch uses), not stored.
    canary: s.canary ? { ...s.canary, weights: recordWeights(replicasOf(s.spec), s.canary) } : null,
    createdAt: new Date(s.createdAt).toISOString(), updatedAt: new Date(s.updatedAt).toISOString(),
    spec: s.spec, previousSpec: s.previous?.spec ?? null,
  };
}

export function taskView(t: TaskRecord, service: string, nodeName: (id: string) => string | undefined, netName: (id: string) => string): Record<string, unknown> {
  const addresses: Record<string, string> = {};
  for (const [id, ip] of Object.entries(t.addresses)) addresses[netName(id)] = ip;
  const addresses6: Record<string, string> = {};
  for (const [id, ip] of Object.entries(t.addresses6 ?? {})) addresses6[netName(id)] = ip;
  return {
    id: t.id, name: taskName(service, t), serviceId: t.serviceId, service, slot: t.slot ?? null,
    nodeId: t.nodeId ?? null, node: t.nodeId ? nodeName(t.nodeId) ?? t.nodeId : null,
    desiredState: t.desiredState, state: t.state, message: t.message ?? null, error: t.error ?? null, health: t.health ?? null,
    specVersion: t.specVersion, image: t.spec.image, runtime: resolveRuntime(t.spec), addresses,
    ...(Object.keys(addresses6).length ? { addresses6 } : {}),
    createdAt: new Date(t.timestamps.created).toISOString(), updatedAt: new Date(t.timestamps.updated).toISOString(),
  };
}

export function notFound(what: string, ref: string): MeshError {
  return new MeshError('MESHD_NOT_FOUND', `no such ${what}: ${ref}`);
}
