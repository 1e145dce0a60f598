/**
 * Runtime choice that users never have to think about: a spec that names no runtime gets
 * one from its image (the built-in demo `whoami` runs on the netns runtime, any other image
 * in Docker), a node reports the runtimes it has (its agent detects them), and the strings
 * the manager and the worker agree on when a node lacks an image. Pure.
 */
import { z } from 'zod';
import type { EngineInfo, Node, RuntimeKind } from './types.js';
import { RUNTIME_KINDS } from './types.js';

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
  /** The engine that answered (with `docker`). */
  engine?: EngineInfo | undefined;
}

const engineSchema = z.object({
  version: z.string().min(1).max(128),
  apiVersion: z.string().regex(/^\d{1,3}\.\d{1,3}$/, 'must look like 1.41'),
}).strict();

/** The report's schema (manager side): runtimes known, each at most once, `engine` only with docker. */
export const nodeDescriptionSchema = z.object({
  runtimes: z.array(z.enum(['netns', 'docker'])).min(1).max(RUNTIME_KINDS.length)
    .refine((l) => new Set(l).size === l.length, 'each runtime at most once'),
  engine: engineSchema.optional(),
}).strict().superRefine((d, ctx) => {
  if (d.engine && !d.runtimes.includes('docker')) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['engine'], message: 'only with the docker runtime' });
});

/** Canonical form (runtimes in RUNTIME_KINDS order), so a reordered report is no change. */
export function normalizeDescription(d: NodeDescription): NodeDescription {
  const runtimes = RUNTIME_KINDS.filter((r) => d.runtimes.includes(r));
  return d.engine ? { runtimes, engine: { version: d.engine.version, apiVersion: d.engine.apiVersion } } : { runtimes };
}

/** Does the node record already say what this (normalized) description says? */
export function describedAs(node: Pick<Node, 'runtimes' | 'engine'>, d: NodeDescription): boolean {
  const have = nodeRuntimes(node);
  if (node.runtimes === undefined) return false; // never reported: record it once
  if (have.length !== d.runtimes.length || have.some((r, i) => r !== d.runtimes[i])) return false;
  return node.engine?.version === d.engine?.version && node.engine?.apiVersion === d.engine?.apiVersion;
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
