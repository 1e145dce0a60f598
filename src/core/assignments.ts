/**
 * What the manager tells a node to run (Docker's dispatcher assignments): the full list of
 * tasks for this node, each with its network attachments (addresses allocated centrally by
 * the manager's IPAM) and its service's VIPs and ports. The agent's worker converges the node
 * to the list; a task absent from the list, or with desiredState 'shutdown', is drained and
 * stopped.
 */
import { z } from 'zod';
import { endpointLbSchema, endpointPortSchema } from './endpoints.js';
import { storedHealthcheckSchema } from './health/spec.js';
import { stopGraceSchema, stopSignalSchema } from './spec/stop.js';
import { containerConfigSchema } from './spec/container.js';
import { storedFileRefSchema } from './spec/files.js';

const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/);
const label = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
/** An IPv6 address as the manager writes it (canonical, addr6.ts); the worker's plan checks it fully. */
const ipv6 = z.string().regex(/^[0-9a-f:]{2,39}$/);

export const attachmentSchema = z.object({
  network: z.object({
    id: z.string().regex(/^[A-Za-z0-9]{1,64}$/),
    name: label,
    vni: z.number().int().min(1).max(16_777_215),
    subnet: z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/),
    gateway: ipv4,
    mtu: z.number().int().min(68).max(65535).optional(),
    /**
     * Absent: overlay (VXLAN sandbox). macvlan: the task gets a macvlan sub-interface (mode
     * bridge) of this node's `parent` interface; no sandbox, no VIP (names resolve to task IPs).
     */
    driver: z.literal('macvlan').optional(),
    parent: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/).optional(),
    /** `network create --default-deny` (issue #19): the node's policy subsystem filters this attachment. */
    defaultDeny: z.literal(true).optional(),
    /** Dual stack (issue #19 item 2): the network's IPv6 subnet and gateway; absent on IPv4-only networks. */
    subnet6: z.string().regex(/^[0-9a-f:]{2,39}\/\d{1,3}$/).optional(),
    gateway6: ipv6.optional(),
  }).strict().refine((n) => (n.driver === 'macvlan') === (n.parent !== undefined), 'a macvlan network needs parent (and only macvlan has one)'),
  ip: ipv4,
  prefix: z.number().int().min(8).max(30),
  /** The task's IPv6 address and prefix on a dual-stack network (both or neither). */
  ip6: ipv6.optional(),
  prefix6: z.number().int().min(64).max(124).optional(),
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
  /** The service's VIP on this network (vip mode), else null. */
  vip: ipv4.nullable(),
  /** The service's IPv6 VIP on a dual-stack network (vip mode; issue #19 item 2 part 2); absent otherwise. */
  vip6: ipv6.optional(),
  aliases: z.array(label).max(32).default([]),
}).strict().refine((a) => (a.ip6 === undefined) === (a.prefix6 === undefined) && (a.ip6 === undefined || a.network.subnet6 !== undefined),
  'ip6 and prefix6 come together, and only on a network with subnet6')
  .refine((a) => a.vip6 === undefined || (a.vip !== null && a.network.subnet6 !== undefined), 'vip6 only beside an IPv4 vip, on a network with subnet6');

export const assignmentSchema = z.object({
  task: z.object({
    id: z.string().regex(/^[A-Za-z0-9]{1,64}$/),
    /** e.g. web.1.<id> */
    name: z.string().min(1).max(128),
    serviceId: z.string().min(1).max(64),
    serviceName: label,
    slot: z.number().int().min(0).optional(),
    /** 'whoami' = the built-in demo server; otherwise an image (docker) or argv (netns). */
    image: z.string().min(1).max(256),
    argv: z.array(z.string().max(4096)).max(256).default([]),
    env: z.record(z.string(), z.string().max(4096)).default({}),
    runtime: z.enum(['netns', 'docker']).default('netns'),
    /** The service's health check (core/health/spec.ts); absent: the image's (docker) or none. */
    healthcheck: storedHealthcheckSchema.optional(),
    /** The service's stop settings (core/spec/stop.ts); absent: the agent's grace, the image's signal. */
    stopGraceMs: stopGraceSchema.optional(),
    stopSignal: stopSignalSchema.optional(),
    /** Resource limits the runtime enforces (docker: HostConfig NanoCpus/Memory); absent: none. */
    limits: z.object({ cpuMilli: z.number().int().min(0).max(2 ** 31 - 1), memoryBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }).strict().optional(),
    /**
     * Container settings (core/spec/container.ts) with the hostname template already rendered
     * for this task; docker applies them all, netns only `workdir` (its `entrypoint` is already
     * in `argv`: there is no image).
     */
    container: containerConfigSchema.optional(),
    /**
     * A standalone container (`netctl run`, core/standalone/run.ts), not a service's task: the
     * node never restarts it and keeps it after it exits (output, exit code) until it is removed.
     */
    standalone: z.boolean().optional(),
    /** Secret / config references (no payloads: the agent fetches those per task, GET /v1/dispatcher/tasks/:id/files). */
    secrets: z.array(storedFileRefSchema).max(64).optional(),
    configs: z.array(storedFileRefSchema).max(64).optional(),
  }).strict(),
  desiredState: z.enum(['running', 'shutdown']),
  endpointMode: z.enum(['vip', 'dnsrr']).default('vip'),
  /** The service's balancing (its current spec: changes apply to running tasks) — copied into the endpoint records. */
  lb: endpointLbSchema.optional(),
  /** The node's `node.labels.zone`, copied into the endpoint records (locality). */
  zone: z.string().min(1).max(63).optional(),
  attachments: z.array(attachmentSchema).min(1).max(16),
  ports: z.array(endpointPortSchema).max(64).default([]),
  /**
   * The service's CURRENT allow-from (issue #19, src/core/policy): names of the services whose
   * tasks may connect to this task. Taken from the service, not the task's spec: a change is
   * reprogrammed in place by the node's policy subsystem, it never replaces the task. Absent: open
   * (except on default-deny networks).
   */
  allowFrom: z.array(label).max(64).optional(),
}).strict();

export type Attachment = z.infer<typeof attachmentSchema>;
export type Assignment = z.infer<typeof assignmentSchema>;
export type AssignmentInput = z.input<typeof assignmentSchema>;
