/**
 * Validation of everything that enters the manager from outside (API bodies, store
 * rows): zod schemas plus a pre-scan for prototype-polluting keys. Every failure is a
 * MeshError('MESHD_BAD_ARGUMENT') whose message names the offending field, so the API
 * answers 400 with a stable code and never 500.
 *
 * Number rules everywhere: finite, integer where it counts things, non-negative, and
 * at most 2^31 - 1 (no 2^53 surprises downstream).
 */
import { z } from 'zod';
import { MeshError } from '../errors.js';
import { parseConstraint } from '../scheduler/constraint.js';
import { healthcheckSchema, storedHealthcheckSchema } from '../health/spec.js';
import { stopGraceSchema, stopSignalSchema } from './stop.js';
import { containerConfigSchema, normalizeContainer, serviceLabelsSchema } from './container.js';
import { fileRefsSchema, storedFileRefSchema } from './files.js';
import { allowFromSchema } from '../policy/spec.js';
import type { Node, ServiceSpec, Task } from './types.js';
import { TASK_STATES } from './types.js';

/** Largest count/duration accepted: 2^31 - 1. */
export const MAX_INT = 2 ** 31 - 1;
const DNS_LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_KEY_RE = /^[A-Za-z0-9]([A-Za-z0-9._/-]{0,126}[A-Za-z0-9])?$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,255}$/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const count = (max = MAX_INT) => z.number().int().min(0).max(max);
const millis = count();
const port = z.number().int().min(0).max(65535);

/** The name rule for services: a DNS label of at most 63 chars. */
export const dnsLabelSchema = z.string().max(63).regex(DNS_LABEL_RE, 'must be a DNS label: [a-z0-9-], at most 63 chars, not starting or ending with -');

const resourcesSchema = z.object({
  cpuMilli: count(),
  /** Up to 2^53 would overflow nothing, but we keep one ceiling: 2^31-1 MiB worth of bytes is plenty. */
  memoryBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}).strict();

const portSchema = z.object({
  published: port.default(0),
  target: port.refine((p) => p > 0, 'must be 1..65535'),
  proto: z.enum(['tcp', 'udp']).default('tcp'),
  mode: z.enum(['ingress', 'host']).default('ingress'),
  policy: z.enum(['cluster', 'local']).default('cluster'),
  proxyProtocol: z.enum(['v1', 'v2']).optional(),
}).strict().superRefine((p, ctx) => {
  if (p.proxyProtocol === undefined) return;
  // The agent's proxy sits where ingress traffic arrives and masquerades anyway; host mode and
  // policy local already keep the client address (no proxy there), UDP has no stream to prefix.
  const why = p.mode === 'host' ? 'mode host keeps the client address already (no proxy there): use mode ingress'
    : p.policy === 'local' ? 'policy local keeps the client address already (no proxy there): use policy cluster'
      : p.proto !== 'tcp' ? 'only TCP ports can carry a PROXY protocol header'
        : p.published === 0 ? 'needs a published port' : null;
  if (why) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['proxyProtocol'], message: why });
});

const restartPolicySchema = z.object({
  condition: z.enum(['any', 'on-failure', 'none']).default('any'),
  delayMs: millis.default(5000),
  maxAttempts: count().default(0),
  windowMs: millis.default(0),
}).strict();

const ratio = z.number().min(0).max(1);
/** Docker's defaults: parallelism 1, no delay, pause on failure, 5 s monitor, ratio 0, stop-first. */
const updateConfigSchema = z.object({
  parallelism: count().default(1),
  delayMs: millis.default(0),
  failureAction: z.enum(['pause', 'continue', 'rollback']).default('pause'),
  monitorMs: millis.default(5000),
  maxFailureRatio: ratio.default(0),
  order: z.enum(['stop-first', 'start-first']).default('stop-first'),
}).strict();

const constraintSchema = z.string().max(512).superRefine((s, ctx) => {
  try {
    parseConstraint(s);
  } catch (e) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: e instanceof Error ? e.message : String(e) });
  }
});

const preferenceSchema = z.object({
  spread: z.string().regex(/^node\.labels\.[A-Za-z0-9._/-]+$/, 'must be node.labels.<key>'),
}).strict();

/** Exactly one of `replicated` / `global` (an object, not a union, so errors name the exact field). */
const modeSchema = z.object({
  replicated: z.object({ replicas: count(10000) }).strict().optional(),
  global: z.object({}).strict().optional(),
}).strict().superRefine((m, ctx) => {
  if ((m.replicated === undefined) === (m.global === undefined)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'exactly one of replicated or global' });
  }
}).transform((m) => (m.global !== undefined ? { global: {} } : { replicated: m.replicated! }));

/** At most this many aliases per network (the assignment and endpoint schemas hold 32). */
export const MAX_ALIASES = 32;
const aliasListSchema = z.array(dnsLabelSchema).max(MAX_ALIASES);

/**
 * One `networks` entry: a network name, or docker's long form `{ target, aliases }`. A bare
 * name is read as `{ target: name }`, so errors name `networks.<i>.target`.
 */
const networkAttachmentSchema = z.preprocess(
  (x) => (typeof x === 'string' ? { target: x } : x),
  z.object({ target: dnsLabelSchema, aliases: aliasListSchema.default([]) }).strict(),
);

/**
 * Normalized attachments: names in first-seen order (duplicates dropped), aliases merged
 * per network from both input forms, duplicates dropped; no aliases → no map.
 */
export function normalizeNetworks(
  attachments: ReadonlyArray<{ target: string; aliases: readonly string[] }>,
  extra: Readonly<Record<string, readonly string[]>> | undefined,
): { networks: string[]; networkAliases?: Record<string, string[]> } {
  const networks = [...new Set(attachments.map((a) => a.target))];
  const merged = new Map<string, string[]>();
  const add = (net: string, list: readonly string[]) => {
    const cur = merged.get(net) ?? [];
    for (const a of list) if (!cur.includes(a)) cur.push(a);
    if (cur.length) merged.set(net, cur);
  };
  for (const a of attachments) add(a.target, a.aliases);
  for (const [net, list] of Object.entries(extra ?? {})) add(net, list);
  if (merged.size === 0) return { networks };
  return { networks, networkAliases: Object.fromEntries([...merged].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) };
}

/** `lb` of a service spec (types.ts ServiceSpec.lb); values as core/lb/balance.ts. */
export const lbSpecSchema = z.object({
  algorithm: z.enum(['random', 'round-robin', 'source-hash']).optional(),
  locality: z.enum(['none', 'node', 'zone']).optional(),
}).strict();

export const serviceSpecSchema = z.object({
  name: dnsLabelSchema,
  image: z.string().min(1).max(512),
  /** Absent: automatic from the image (resolveRuntime). */
  runtime: z.enum(['netns', 'docker']).optional(),
  command: z.array(z.string().max(4096)).max(256).optional(),
  env: z.record(z.string().regex(ENV_KEY_RE, 'invalid environment variable name'), z.string().max(32768)).default({}),
  mode: modeSchema.default({ replicated: { replicas: 1 } }),
  endpointMode: z.enum(['vip', 'dnsrr']).default('vip'),
  lb: lbSpecSchema.optional(),
  ports: z.array(portSchema).max(256).default([]),
  networks: z.array(networkAttachmentSchema).max(64).default([]),
  networkAliases: z.record(dnsLabelSchema, aliasListSchema).optional(),
  healthcheck: healthcheckSchema.optional(),
  stopGracePeriodMs: stopGraceSchema.optional(),
  stopSignal: stopSignalSchema.optional(),
  constraints: z.array(constraintSchema).max(64).default([]),
  preferences: z.array(preferenceSchema).max(8).default([]),
  maxReplicasPerNode: count(10000).optional(),
  labels: serviceLabelsSchema.optional(),
  container: containerConfigSchema.optional(),
  allowFrom: allowFromSchema.optional(),
  resources: resourcesSchema.default({ cpuMilli: 0, memoryBytes: 0 }),
  limits: resourcesSchema.optional(),
  secrets: fileRefsSchema('secret').optional(),
  configs: fileRefsSchema('config').optional(),
  restartPolicy: restartPolicySchema.default({}),
  updateConfig: updateConfigSchema.default({}),
  rollbackConfig: updateConfigSchema.default({}),
}).strict().superRefine((s, ctx) => {
  const targets = new Set(s.networks.map((n) => n.target));
  for (const net of Object.keys(s.networkAliases ?? {})) {
    if (!targets.has(net)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['networkAliases', net], message: `network ${net} is not in networks` });
  }
  const { networkAliases } = normalizeNetworks(s.networks, s.networkAliases);
  for (const [net, list] of Object.entries(networkAliases ?? {})) {
    if (list.length > MAX_ALIASES) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['networkAliases', net], message: `at most ${MAX_ALIASES} aliases per network` });
  }
  const seen = new Set<string>();
  s.ports.forEach((p, i) => {
    if (p.published === 0) return;
    const k = `${p.published}/${p.proto}`;
    if (seen.has(k)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ports', i, 'published'], message: `port ${k} published twice` });
    seen.add(k);
  });
  // dnsrr services publish through the mesh too (swarmkit#1693): the ingress LB targets the
  // tasks' ingress addresses directly, no VIP is involved.
  // docker: "replicas-max-per-node can only be used with replicated mode".
  if (s.maxReplicasPerNode && 'global' in s.mode) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['maxReplicasPerNode'], message: 'can only be used with replicated mode' });
}).transform(({ networks, networkAliases, maxReplicasPerNode, labels, container, secrets, configs, allowFrom, ...rest }) => {
  const c = normalizeContainer(container);
  return {
    ...rest, ...normalizeNetworks(networks, networkAliases),
    ...(allowFrom !== undefined ? { allowFrom: [...new Set(allowFrom)] } : {}),
    ...(secrets?.length ? { secrets } : {}),
    ...(configs?.length ? { configs } : {}),
    ...(maxReplicasPerNode ? { maxReplicasPerNode } : {}),
    ...(labels && Object.keys(labels).length ? { labels } : {}),
    ...(c ? { container: c } : {}),
  };
});

export const nodeSchema = z.object({
  id: z.string().min(1).max(128),
  hostname: z.string().min(1).max(253),
  role: z.enum(['manager', 'worker']),
  availability: z.enum(['active', 'pause', 'drain']).default('active'),
  state: z.enum(['ready', 'disconnected', 'down']).default('ready'),
  labels: z.record(z.string().regex(LABEL_KEY_RE, 'invalid label key'), z.string().max(1024)).default({}),
  resources: resourcesSchema.default({ cpuMilli: 0, memoryBytes: 0 }),
  runtimes: z.array(z.enum(['netns', 'docker'])).max(2).optional(),
  engine: z.object({
    version: z.string().min(1).max(128), apiVersion: z.string().min(1).max(16),
    labels: z.record(z.string().max(256), z.string().max(1024)).optional(),
  }).strict().optional(),
  platform: z.object({ os: z.string().min(1).max(64), arch: z.string().min(1).max(64) }).strict().optional(),
  descriptionAt: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
}).strict();

const taskSpecSchema = z.object({
  image: z.string().min(1),
  runtime: z.enum(['netns', 'docker']).optional(),
  command: z.array(z.string()).optional(),
  env: z.record(z.string()),
  networks: z.array(z.string()),
  networkAliases: z.record(z.array(z.string())).optional(),
  ports: z.array(portSchema),
  healthcheck: storedHealthcheckSchema.optional(),
  stopGracePeriodMs: stopGraceSchema.optional(),
  stopSignal: stopSignalSchema.optional(),
  constraints: z.array(constraintSchema),
  preferences: z.array(preferenceSchema),
  maxReplicasPerNode: count(10000).optional(),
  container: containerConfigSchema.optional(),
  resources: resourcesSchema,
  limits: resourcesSchema.optional(),
  secrets: z.array(storedFileRefSchema).max(64).optional(),
  configs: z.array(storedFileRefSchema).max(64).optional(),
}).strict();

export const taskSchema = z.object({
  id: z.string().min(1).max(128),
  serviceId: z.string().min(1).max(128),
  slot: count(10000).refine((n) => n >= 1, 'must be >= 1').optional(),
  nodeId: z.string().min(1).max(128).optional(),
  specVersion: count(),
  spec: taskSpecSchema,
  desiredState: z.enum(['ready', 'running', 'shutdown']),
  state: z.enum(TASK_STATES),
  message: z.string().max(4096).optional(),
  error: z.string().max(4096).optional(),
  health: z.enum(['starting', 'healthy', 'unhealthy']).optional(),
  timestamps: z.object({ created: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), updated: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }).strict(),
  restarts: z.array(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)).max(10000).optional(),
}).strict();

export type ServiceSpecInput = z.input<typeof serviceSpecSchema>;
export type NodeInput = z.input<typeof nodeSchema>;

/**
 * Throws MESHD_BAD_ARGUMENT naming the path of the first key that could pollute a
 * prototype (`__proto__`, `constructor`, `prototype`). JSON.parse makes `__proto__` an
 * own key, and zod's record would then assign it — so this runs before the schema.
 */
export function rejectForbiddenKeys(v: unknown, path = ''): void {
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    v.forEach((x, i) => rejectForbiddenKeys(x, `${path}[${i}]`));
    return;
  }
  for (const k of Object.keys(v)) {
    const p = path ? `${path}.${k}` : k;
    if (FORBIDDEN_KEYS.has(k)) throw new MeshError('MESHD_BAD_ARGUMENT', `${p}: forbidden key`, { field: p });
    rejectForbiddenKeys((v as Record<string, unknown>)[k], p);
  }
}

function parseWith<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, what: string, raw: unknown): T {
  rejectForbiddenKeys(raw);
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const first = r.error.issues[0]!;
  const field = first.path.join('.') || '(root)';
  throw new MeshError('MESHD_BAD_ARGUMENT', `${what} ${field}: ${first.message}`, {
    field,
    issues: r.error.issues.slice(0, 20).map((i) => ({ field: i.path.join('.'), message: i.message })),
  });
}

/** Validates a service spec (API body), filling documented defaults. */
export function parseServiceSpec(raw: unknown): ServiceSpec {
  return parseWith(serviceSpecSchema, 'service spec', raw) as ServiceSpec;
}

export function parseNode(raw: unknown): Node {
  return parseWith(nodeSchema, 'node', raw) as Node;
}

export function parseTask(raw: unknown): Task {
  return parseWith(taskSchema, 'task', raw) as Task;
}
