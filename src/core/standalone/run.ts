/**
 * Standalone containers on attachable networks (`docker run --network app` next to swarm
 * services; here `netctl run`), the pure half. Swarm's model: the manager records a *network
 * attachment* for the container (its addresses come from the cluster's IPAM, like a task's),
 * and the node runs the container itself. Here the node's worker runs it as a one-shot task
 * (`standalone: true` in its assignment: never restarted, kept after it exits until
 * `container rm`, so its output and exit code stay readable), published in the gossip table in
 * dnsrr mode under the container's name, so `NAME` resolves to its address on every network
 * it joined and services' tasks reach it; it has no VIP (it is not a service).
 *
 * Everything here validates or builds values; the manager (src/manager/control/attachments.ts)
 * and the agent (src/agent/worker/containers.ts) do the I/O.
 */
import { z } from 'zod';
import { assignmentSchema, type Assignment } from '../assignments.js';
import { MeshError } from '../errors.js';
import { macFromIp } from '../ipam/addr.js';
import { dnsLabelSchema } from '../spec/validate.js';

/** Most networks one container joins (an assignment's limit). */
export const MAX_RUN_NETWORKS = 16;

/** What the agent asks the manager for: an attachment of container `name` to `networks` (names). */
export const attachRequestSchema = z.object({
  name: dnsLabelSchema,
  networks: z.array(dnsLabelSchema).min(1).max(MAX_RUN_NETWORKS),
}).strict();
export type AttachRequest = z.infer<typeof attachRequestSchema>;

/** `netctl run` as the agent receives it (POST /v1/containers). */
export const runRequestSchema = z.object({
  /** Container name (a DNS label: it becomes a DNS name); absent: `run-<first 8 of the id>`. */
  name: dnsLabelSchema.optional(),
  image: z.string().min(1).max(256),
  argv: z.array(z.string().max(4096)).max(256).default([]),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'), z.string().max(4096)).default({}),
  networks: z.array(dnsLabelSchema).min(1).max(MAX_RUN_NETWORKS),
  runtime: z.enum(['docker', 'netns']).default('docker'),
  /** `--rm`: removed (and its attachment freed) as soon as it exits. */
  autoRemove: z.boolean().default(false),
}).strict();
export type RunRequest = z.infer<typeof runRequestSchema>;

/** A network as the manager hands it to the node with an attachment (the assignment's network shape). */
export interface AttachedNetwork {
  id: string;
  name: string;
  vni: number;
  subnet: string;
  gateway: string;
  mtu?: number | undefined;
  attachable: boolean;
  ingress: boolean;
}

/** What the manager answers: the attachment id (the container's task id), its name and one address per network. */
export interface AttachmentGrant {
  id: string;
  name: string;
  networks: Array<{ network: Omit<AttachedNetwork, 'attachable' | 'ingress'>; ip: string }>;
}

/**
 * Refuses networks a standalone container may not join, with docker's wording: the ingress
 * network and networks created without `--attachable`. Duplicates are refused too (one
 * interface per network).
 */
export function checkAttachable(requested: readonly string[], byName: (name: string) => AttachedNetwork | undefined): AttachedNetwork[] {
  const seen = new Set<string>();
  return requested.map((name) => {
    if (seen.has(name)) throw new MeshError('MESHD_BAD_ARGUMENT', `network ${name} is named twice`, { field: 'networks' });
    seen.add(name);
    const n = byName(name);
    if (!n) throw new MeshError('MESHD_NOT_FOUND', `network ${name} not found`, { field: 'networks' });
    if (n.ingress || !n.attachable) {
      throw new MeshError('MESHD_NOT_ATTACHABLE', `Could not attach to network ${name}: network ${name} not manually attachable`, { network: name });
    }
    return n;
  });
}

/** The default name of a container run without `--name`. */
export function defaultRunName(id: string): string {
  return `run-${id.slice(0, 8).toLowerCase()}`;
}

/**
 * The one-shot assignment the worker runs for a standalone container: its own service (named
 * like the container, so DNS answers `NAME` with its addresses; dnsrr: no VIP), no ports.
 */
export function standaloneAssignment(grant: AttachmentGrant, run: Pick<RunRequest, 'image' | 'argv' | 'env' | 'runtime'>): Assignment {
  if (grant.networks.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `container ${grant.name} has no network`);
  return assignmentSchema.parse({
    task: {
      id: grant.id, name: grant.name, serviceId: `container:${grant.id}`, serviceName: grant.name,
      image: run.image, argv: run.argv, env: run.env, runtime: run.runtime, standalone: true,
      // Removal of a running container is `rm -f` (docker: SIGKILL at once, no grace).
      stopGraceMs: 0,
    },
    desiredState: 'running',
    endpointMode: 'dnsrr',
    attachments: grant.networks.map(({ network: n, ip }) => ({
      network: { id: n.id, name: n.name, vni: n.vni, subnet: n.subnet, gateway: n.gateway, ...(n.mtu !== undefined ? { mtu: n.mtu } : {}) },
      ip, prefix: Number(n.subnet.split('/')[1]), mac: macFromIp(ip), vip: null, aliases: [],
    })),
    ports: [],
  });
}

/** A standalone container's status in docker's words: `running`, `created`, `exited (CODE)`. */
export function containerStatus(state: string, exitCode: number | null | undefined): string {
  if (state === 'running' || state === 'draining') return 'running';
  if (state === 'new' || state === 'starting') return 'created';
  return exitCode === null || exitCode === undefined ? 'exited' : `exited (${exitCode})`;
}
