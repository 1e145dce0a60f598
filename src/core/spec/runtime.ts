/**
 * Runtime choice that users never have to think about: a spec that names no runtime gets
 * one from its image (the built-in demo `whoami` runs on the netns runtime, any other image
 * in Docker), a node reports the runtimes it has (its agent detects them), and the strings
 * the manager and the worker agree on when a node lacks an image. Pure.
 */
import { z } from 'zod';
import { MeshError } from '../errors.js';
import type { EngineInfo, Node, Platform, Resources, RuntimeKind } from './types.js';
import { RUNTIME_KINDS } from './types.js';
import { checkNetnsContainer, type ContainerConfig } from './container.js';
import { checkNetnsFiles, type FileRef } from './files.js';

/** The built-in demo server's image name: a task of it is a host process (netns runtime). */
export const BUILTIN_IMAGE = 'whoami';

/** The runtime a spec's tasks run on: its own choice, else `whoami` → netns, any other image → docker. */
export function resolveRuntime(spec: { image: string; runtime?: RuntimeKind | undefined }): RuntimeKind {
  if (spec.runtime !== undefined) return spec.runtime;
  return spec.image === BUILTIN_IMAGE ? 'netns' : 'docker';
}

/** The runtimes a node has; a record from before nodes reported them has the built-in one. */
export function nodeRuntimes(node: Pick<Node, 'runtimes'>): readonly RuntimeKind[] {
  return node.runtimes ?? ['netns'];
}

/** Parses a runtime name as typed by a person (CLI flag, Compose key); undefined when unknown. */
export function runtimeKind(s: string): RuntimeKind | undefined {
  return (RUNTIME_KINDS as readonly string[]).includes(s) ? (s as RuntimeKind) : undefined;
}

/** What a node reports about itself on its dispatcher channel (swarm's NodeDescription, trimmed). */
export interface NodeDescription {
  /** Always holds `netns`; `docker` when the Docker Engine answered on its socket. */
  runtimes: RuntimeKind[];
  /** The engine that answered (with `docker`), with its labels. */
  engine?: EngineInfo | undefined;
  /** What the node has to offer (CPUs in milli-CPUs, memory in bytes): the scheduler's totals. */
  resources?: Resources | undefined;
  /** The node's OS and architecture (docker's names: `linux`, `x86_64`). */
  platform?: Platform | undefined;
}

const engineSchema = z.object({
  version: z.string().min(1).max(128),
  apiVersion: z.string().regex(/^\d{1,3}\.\d{1,3}$/, 'must look like 1.41'),
  labels: z.record(z.string().min(1).max(256), z.string().max(1024)).refine((o) => Object.keys(o).length <= 256, 'at most 256 labels').optional(),
}).strict();
const resourcesSchema = z.object({
  cpuMilli: z.number().int().min(0).max(2 ** 31 - 1),
  memoryBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}).strict();
const platformSchema = z.object({ os: z.string().min(1).max(64), arch: z.string().min(1).max(64) }).strict();

/** The report's schema (manager side): runtimes known, each at most once, `engine` only with docker. */
export const nodeDescriptionSchema = z.object({
  runtimes: z.array(z.enum(['netns', 'docker'])).min(1).max(RUNTIME_KINDS.length)
    .refine((l) => new Set(l).size === l.length, 'each runtime at most once'),
  engine: engineSchema.optional(),
  resources: resourcesSchema.optional(),
  platform: platformSchema.optional(),
}).strict().superRefine((d, ctx) => {
  if (d.engine && !d.runtimes.includes('docker')) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['engine'], message: 'only with the docker runtime' });
});

/** Canonical form (runtimes in RUNTIME_KINDS order, labels sorted), so a reordered report is no change. */
export function normalizeDescription(d: NodeDescription): NodeDescription {
  const runtimes = RUNTIME_KINDS.filter((r) => d.runtimes.includes(r));
  const labels = d.engine?.labels && Object.keys(d.engine.labels).length
    ? Object.fromEntries(Object.entries(d.engine.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : undefined;
  return {
    runtimes,
    ...(d.engine ? { engine: { version: d.engine.version, apiVersion: d.engine.apiVersion, ...(labels ? { labels } : {}) } } : {}),
    ...(d.resources ? { resources: { cpuMilli: d.resources.cpuMilli, memoryBytes: d.resources.memoryBytes } } : {}),
    ...(d.platform ? { platform: { os: d.platform.os, arch: d.platform.arch } } : {}),
  };
}

/** Does the node record already say what this (normalized) description says? */
export function describedAs(node: Pick<Node, 'runtimes' | 'engine' | 'resources' | 'platform'>, d: NodeDescription): boolean {
  const have = nodeRuntimes(node);
  if (node.runtimes === undefined) return false; // never reported: record it once
  if (have.length !== d.runtimes.length || have.some((r, i) => r !== d.runtimes[i])) return false;
  if (d.resources && (node.resources.cpuMilli !== d.resources.cpuMilli || node.resources.memoryBytes !== d.resources.memoryBytes)) return false;
  if (d.platform && (node.platform?.os !== d.platform.os || node.platform.arch !== d.platform.arch)) return false;
  if (JSON.stringify(node.engine?.labels ?? {}) !== JSON.stringify(d.engine?.labels ?? {})) return false;
  return node.engine?.version === d.engine?.version && node.engine?.apiVersion === d.engine?.apiVersion;
}

/**
 * Refuses what a spec's runtime cannot do, instead of accepting and dropping it: resource
 * limits are enforced by the docker runtime (HostConfig NanoCpus/Memory) only; the netns
 * runtime has no cgroup support, so a limit there is MESHD_UNSUPPORTED naming the runtime;
 * so are the container settings netns cannot honour (container.ts checkNetnsContainer).
 */
export function checkRuntimeSupport(spec: { name: string; image: string; runtime?: RuntimeKind | undefined; limits?: Resources | undefined; container?: ContainerConfig | undefined; secrets?: FileRef[] | undefined; configs?: FileRef[] | undefined }): void {
  const rt = resolveRuntime(spec);
  if (rt === 'netns') checkNetnsContainer(spec.name, spec.container);
  if (rt === 'netns') checkNetnsFiles(spec.name, spec);
  const l = spec.limits;
  if (rt === 'netns' && l && (l.cpuMilli > 0 || l.memoryBytes > 0)) {
    throw new MeshError('MESHD_UNSUPPORTED', `service ${spec.name}: resource limits (--limit-cpu, --limit-memory) are not supported by the netns runtime (they are with --runtime docker)`, { runtime: rt, field: 'limits' });
  }
}

/**
 * The error a worker reports when its node lacks a task's image (images are never pulled):
 * `image <IMAGE> not present on node <NODE>`. The manager shows it in `service ps` and the
 * scheduler keeps the image's next tasks off that node for a while (scheduler/image.ts).
 */
export function imageMissingMessage(image: string, node: string): string {
  return `image ${image} not present on node ${node}`;
}

/** Is `error` the image-missing report for `image` (any node name)? */
export function isImageMissing(error: string | undefined, image: string): boolean {
  return error !== undefined && error.startsWith(`image ${image} not present on node `);
}
