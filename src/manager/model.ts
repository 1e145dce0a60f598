/**
 * The manager's records in the store and the validation of API bodies that change them.
 * A node record extends the scheduler's Node (src/core/spec) with what the manager knows
 * about its membership: address and current certificate.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { MeshError } from '../core/errors.js';
import type { Node } from '../core/spec/types.js';
import { dnsLabelSchema, rejectForbiddenKeys } from '../core/spec/validate.js';
import { nodeRuntimes } from '../core/spec/runtime.js';

/** Store keys (namespaced, see src/adapters/store/store.ts). */
export const KEYS = {
  ca: 'cluster/ca',
  tokens: 'cluster/tokens',
  info: 'cluster/info',
  /** ClusterSettings (scheduling strategy): written by `cluster update`, read by every step. */
  settings: 'cluster/settings',
  revocations: 'cluster/revocations',
  /** The gossip keyring (base64 keys, primary first): handed out in join answers and pulled by agents. */
  gossipKeys: 'cluster/gossip-keys',
  node: (id: string): string => `nodes/${id}`,
  nodes: 'nodes/',
} as const;

export interface ManagedNode extends Node {
  /** Advertise address (IP) the node joined with. */
  addr: string;
  /** A manager's API address (host:port), published by the manager when it starts serving. */
  managerAddr?: string | undefined;
  certSerial: string;
  /** Epoch ms. */
  certNotAfter: number;
  createdAt: number;
  updatedAt: number;
}

export interface ClusterInfo {
  id: string;
  createdAt: number;
  caDigest: string;
}

/** The CA record of clusters made before sealing (plain key); sealed-ca.ts migrates it to SealedCaRecord. */
export interface StoredCa {
  certPem: string;
  keyPem: string;
}

/** Label keys as the scheduler's node schema accepts them. */
const LABEL_KEY_RE = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$/;
const labelsSchema = z.record(z.string().regex(LABEL_KEY_RE, 'invalid label key'), z.string().max(1024))
  .refine((o) => Object.keys(o).length <= 256, 'at most 256 labels');
/** Store revision used for optimistic concurrency (docker's --version). */
const revisionSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const joinRequestSchema = z.object({
  token: z.string().min(1).max(256),
  csr: z.string().min(1).max(16 * 1024),
  name: dnsLabelSchema,
  role: z.enum(['worker', 'manager']).optional(),
  addr: z.string().max(64).refine((s) => isIP(s) !== 0, 'must be an IP address').optional(),
  /**
   * The joining node will run a manager itself if granted the manager role: the join is
   * refused (before anything is recorded) when the cluster's store cannot be shared.
   */
  hostManager: z.boolean().optional(),
}).strict();
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export const nodeUpdateSchema = z.object({
  availability: z.enum(['active', 'pause', 'drain']).optional(),
  /** `node promote` / `node demote` (docker's node update --role). */
  role: z.enum(['manager', 'worker']).optional(),
  labels: labelsSchema.optional(),
  labelAdd: labelsSchema.optional(),
  labelRm: z.array(z.string().regex(LABEL_KEY_RE, 'invalid label key')).max(256).optional(),
  version: revisionSchema.optional(),
}).strict();
export type NodeUpdate = z.infer<typeof nodeUpdateSchema>;

export const renewRequestSchema = z.object({ csr: z.string().min(1).max(16 * 1024) }).strict();

/** Validates an API body against a schema; failures are MESHD_BAD_ARGUMENT naming the field. */
export function parseBody<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, what: string, raw: unknown): T {
  if (raw === undefined) throw new MeshError('MESHD_BAD_ARGUMENT', `${what}: request body required`);
  rejectForbiddenKeys(raw);
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const first = r.error.issues[0]!;
  const field = first.path.join('.') || '(root)';
  throw new MeshError('MESHD_BAD_ARGUMENT', `${what} ${field}: ${first.message}`, { field });
}

/** Applies an update to a node record (pure). */
export function applyNodeUpdate(n: ManagedNode, u: NodeUpdate, now: number): ManagedNode {
  const labels: Record<string, string> = Object.assign(Object.create(null) as Record<string, string>, u.labels ?? n.labels);
  for (const [k, v] of Object.entries(u.labelAdd ?? {})) labels[k] = v;
  for (const k of u.labelRm ?? []) delete labels[k];
  return { ...n, availability: u.availability ?? n.availability, role: u.role ?? n.role, labels: { ...labels }, updatedAt: now };
}

/**
 * `node promote` / `node demote` (docker's rules, pure): the last manager (`managers` = how
 * many there are) is never demoted; a worker becomes a manager only where managers share
 * the store (`sharedStore`: etcd) — on the embedded store of one manager it could not host
 * one, so the promotion is refused rather than half-done.
 */
export function checkRoleChange(node: Pick<ManagedNode, 'hostname'>, role: 'manager' | 'worker', managers: number, sharedStore: boolean): void {
  if (role === 'worker') {
    if (managers <= 1) throw new MeshError('MESHD_BAD_ARGUMENT', `node ${node.hostname}: attempting to demote the last manager of the cluster`, { reason: 'last-manager' });
    return;
  }
  if (!sharedStore) {
    throw new MeshError('MESHD_UNSUPPORTED', `node ${node.hostname} cannot be promoted: this cluster keeps its state in the embedded store of one manager; a second manager needs a shared etcd store (cluster init --store etcd)`, { reason: 'store-not-shared' });
  }
}

/** docker's MANAGER STATUS column: Leader / Reachable / Unreachable (managers only). */
export type ManagerStatus = 'leader' | 'reachable' | 'unreachable';

/** A manager's status from the elected leader's id and the node's liveness (pure). */
export function managerStatusOf(n: Pick<ManagedNode, 'id' | 'role' | 'state'>, leaderId: string | undefined): ManagerStatus | null {
  if (n.role !== 'manager') return null;
  if (n.id === leaderId) return 'leader';
  return n.state === 'ready' ? 'reachable' : 'unreachable';
}

/**
 * What the API shows of a node (no secrets here, but keep the shape explicit). `runtimes` is
 * always there (a node that never reported has the built-in netns); `engine` with docker.
 */
export function nodeView(n: ManagedNode, version: number, leaderId?: string): Record<string, unknown> {
  const { descriptionAt, ...rest } = n;
  return {
    ...rest, runtimes: [...nodeRuntimes(n)], engine: n.engine ?? null,
    descriptionAt: descriptionAt !== undefined ? new Date(descriptionAt).toISOString() : null,
    certNotAfter: new Date(n.certNotAfter).toISOString(), version, managerStatus: managerStatusOf(n, leaderId),
  };
}
