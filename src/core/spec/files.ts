/**
 * Secrets and configs a service's tasks get as files (docker's `--secret` / `--config`,
 * Compose's service-level `secrets:` / `configs:`). A reference names the secret or config
 * (`source`) and where the file appears in the container (`target`), its owner and mode.
 *
 * Defaults are swarm's: a secret at `/run/secrets/<source>`, a config at `/<source>`, owner
 * 0:0. Mode: secrets 0400 (stricter than swarm's 0444: only the container's root — or the
 * `uid` given — reads it), configs 0444 as in swarm. A relative secret target is a file name
 * under /run/secrets. References are stored normalized (absolute target, uid/gid/mode filled),
 * so a task spec says exactly what the agent writes. Pure: schemas and the flag parser.
 */
import { z } from 'zod';
import { MeshError } from '../errors.js';

export type FileKind = 'secret' | 'config';

export interface FileRef {
  /** The secret's / config's name. */
  source: string;
  /** Absolute path of the file in the container. */
  target: string;
  uid: number;
  gid: number;
  /** File mode (permission bits only). */
  mode: number;
}

/** docker's secret / config names. */
export const FILE_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$/;
/** Longest reference list per kind on one service. */
export const MAX_FILE_REFS = 64;
export const SECRETS_DIR = '/run/secrets';
export const DEFAULT_MODE: Readonly<Record<FileKind, number>> = { secret: 0o400, config: 0o444 };

const TARGET_RE = /^[^\0]{1,4096}$/;
const SEGMENT_OK = (p: string): boolean => p.split('/').every((seg) => seg !== '..' && seg !== '.');

const refInput = z.object({
  source: z.string().regex(FILE_NAME_RE, 'must be a name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 chars'),
  target: z.string().regex(TARGET_RE).refine(SEGMENT_OK, 'must not contain . or .. segments').optional(),
  uid: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  gid: z.number().int().min(0).max(2 ** 31 - 1).optional(),
  mode: z.number().int().min(0).max(0o777).optional(),
}).strict();

/** Absolute target for a reference (see the file comment). */
export function targetOf(kind: FileKind, source: string, target: string | undefined): string {
  const t = target ?? source;
  if (t.startsWith('/')) {
    if (t === '/' || t.endsWith('/')) throw new MeshError('MESHD_BAD_ARGUMENT', `${kind} ${source}: target ${t} must name a file`, { field: `${kind}s` });
    return t;
  }
  return kind === 'secret' ? `${SECRETS_DIR}/${t}` : `/${t}`;
}

/** The schema of a service's `secrets` / `configs` list; normalizes and refuses duplicates. */
export function fileRefsSchema(kind: FileKind): z.ZodType<FileRef[], z.ZodTypeDef, unknown> {
  return z.array(refInput).max(MAX_FILE_REFS).transform((list, ctx) => {
    const out: FileRef[] = [];
    const targets = new Set<string>();
    for (const [i, r] of list.entries()) {
      let target: string;
      try {
        target = targetOf(kind, r.source, r.target);
      } catch (e) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'target'], message: (e as Error).message });
        continue;
      }
      if (targets.has(target)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i, 'target'], message: `target ${target} is used twice` });
      targets.add(target);
      out.push({ source: r.source, target, uid: r.uid ?? 0, gid: r.gid ?? 0, mode: r.mode ?? DEFAULT_MODE[kind] });
    }
    return out;
  });
}

/** A stored (already normalized) reference, for task specs and assignments. */
export const storedFileRefSchema = z.object({
  source: z.string().regex(FILE_NAME_RE),
  target: z.string().regex(/^\/[^\0]{1,4095}$/),
  uid: z.number().int().min(0).max(2 ** 31 - 1),
  gid: z.number().int().min(0).max(2 ** 31 - 1),
  mode: z.number().int().min(0).max(0o777),
}).strict();

/**
 * docker's flag value: `NAME` or `source=NAME,target=PATH,uid=N,gid=N,mode=0400` (mode octal;
 * `src`/`dst` spellings accepted as docker does). Returns the unnormalized input.
 */
export function parseFileRefFlag(kind: FileKind, v: string): { source: string; target?: string; uid?: number; gid?: number; mode?: number } {
  const bad = (why: string): never => {
    throw new MeshError('MESHD_BAD_ARGUMENT', `--${kind} ${JSON.stringify(v)}: ${why}`, { field: `${kind}s` });
  };
  if (!v.includes('=')) {
    if (!FILE_NAME_RE.test(v)) bad('not a valid name');
    return { source: v };
  }
  const out: { source?: string; target?: string; uid?: number; gid?: number; mode?: number } = {};
  const int = (k: string, s: string, radix: number): number => {
    const re = radix === 8 ? /^0?[0-7]{1,4}$/ : /^\d{1,10}$/;
    if (!re.test(s)) bad(`${k} must be ${radix === 8 ? 'an octal mode like 0440' : 'a number'}`);
    return parseInt(s, radix);
  };
  for (const part of v.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) bad(`${JSON.stringify(part)} is not key=value`);
    const k = part.slice(0, eq).trim().toLowerCase();
    const val = part.slice(eq + 1).trim();
    if (k === 'source' || k === 'src') out.source = val;
    else if (k === 'target' || k === 'dst' || k === 'destination') out.target = val;
    else if (k === 'uid') out.uid = int(k, val, 10);
    else if (k === 'gid') out.gid = int(k, val, 10);
    else if (k === 'mode') out.mode = int(k, val, 8);
    else bad(`unknown option ${k} (source, target, uid, gid, mode)`);
  }
  if (!out.source) bad('source is required');
  if (!FILE_NAME_RE.test(out.source!)) bad('source is not a valid name');
  return out as { source: string };
}

/** Names the netns runtime refuses: it has no mount namespace per task to bind the files into. */
export function checkNetnsFiles(service: string, spec: { secrets?: readonly FileRef[] | undefined; configs?: readonly FileRef[] | undefined }): void {
  for (const kind of ['secrets', 'configs'] as const) {
    if (spec[kind]?.length) {
      throw new MeshError('MESHD_UNSUPPORTED', `service ${service}: ${kind} are not supported by the netns runtime (tasks share the host's mount namespace); use --runtime docker`, { runtime: 'netns', field: kind });
    }
  }
}
