/**
 * Secrets and configs as the manager keeps them (docker's `secret` / `config` objects): one
 * record per name at `secrets/<name>` / `configs/<name>`, the payload sealed with the cluster
 * data key (AAD = the record's store key), so the store never holds a payload in plain text.
 * Configs are not secret in swarm; sealing them too costs nothing and keeps one code path.
 *
 * Objects are immutable (as in swarm): rotation is a new object and `service update
 * --secret-rm old --secret-add new`. `rm` of an object a service references is refused with
 * MESHD_SECRET_IN_USE naming the services; both that check and a service's reference check
 * run inside the control plane's serialized step, so they cannot interleave.
 *
 * Nothing here logs a payload; views never include a secret's payload.
 */
import { z } from 'zod';
import { MeshError } from '../../core/errors.js';
import { FILE_NAME_RE, type FileKind, type FileRef } from '../../core/spec/files.js';
import type { ServiceSpec } from '../../core/spec/types.js';
import type { SealedValue, Sealer } from '../../adapters/pki/seal.js';
import type { Store } from '../../adapters/store/store.js';

/** swarm's limit on a secret / config payload. */
export const MAX_FILE_BYTES = 500 * 1024;

export const FKEYS = {
  object: (kind: FileKind, name: string): string => `${kind}s/${name}`,
  prefix: (kind: FileKind): string => `${kind}s/`,
} as const;

export interface FileObjectRecord {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Payload size in bytes. */
  size: number;
  createdAt: number;
  updatedAt: number;
  /** The payload, sealed under the record's store key. */
  data: SealedValue;
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/** `POST /v1/secrets` / `POST /v1/configs` body: the payload travels base64 in the body, never in a URL or argv. */
export const fileCreateSchema = z.object({
  name: z.string().regex(FILE_NAME_RE, 'must be a name: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 64 chars'),
  data: z.string().max(Math.ceil(MAX_FILE_BYTES / 3) * 4 + 4).regex(B64_RE, 'must be base64'),
  labels: z.record(z.string().min(1).max(128), z.string().max(1024)).refine((o) => Object.keys(o).length <= 64, 'at most 64 labels').default({}),
}).strict();

/** Decodes and bounds a payload (empty refused: docker's "secret data must not be empty"). */
export function payloadOf(kind: FileKind, b64: string): Buffer {
  const data = Buffer.from(b64, 'base64');
  if (data.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `${kind} data must not be empty`, { field: 'data' });
  if (data.length > MAX_FILE_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `${kind} data is ${data.length} bytes: at most ${MAX_FILE_BYTES} (500 KB)`, { field: 'data' });
  return data;
}

export function newRecord(sealer: Sealer, kind: FileKind, id: string, name: string, labels: Record<string, string>, data: Buffer, now: number): FileObjectRecord {
  return { id, name, labels: { ...labels }, size: data.length, createdAt: now, updatedAt: now, data: sealer.seal(FKEYS.object(kind, name), data) };
}

/** What list / inspect show: never a secret's payload; a config's payload base64 (docker's `config inspect` shows Spec.Data). */
export function fileView(kind: FileKind, r: FileObjectRecord, sealer?: Sealer): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: r.id, name: r.name, labels: r.labels, size: r.size,
    createdAt: new Date(r.createdAt).toISOString(), updatedAt: new Date(r.updatedAt).toISOString(),
  };
  if (kind === 'config' && sealer) view.data = sealer.open(FKEYS.object(kind, r.name), r.data).toString('base64');
  return view;
}

/** Finds an object by name or id (or a unique id prefix). */
export async function findFileObject(store: Store, kind: FileKind, ref: string): Promise<{ rec: FileObjectRecord; revision: number }> {
  if (FILE_NAME_RE.test(ref)) {
    const kv = await store.get<FileObjectRecord>(FKEYS.object(kind, ref));
    if (kv) return { rec: kv.value, revision: kv.revision };
  }
  const all = (await store.list<FileObjectRecord>(FKEYS.prefix(kind))).filter((kv) => kv.value.id === ref || (ref.length >= 4 && kv.value.id.startsWith(ref)));
  if (all.length === 1) return { rec: all[0]!.value, revision: all[0]!.revision };
  if (all.length > 1) throw new MeshError('MESHD_BAD_ARGUMENT', `${kind} ${ref} is ambiguous (${all.length} matches)`);
  throw new MeshError('MESHD_NOT_FOUND', `no such ${kind}: ${ref}`, { kind });
}

/** The refs of one kind a spec holds. */
export function refsOf(kind: FileKind, spec: Pick<ServiceSpec, 'secrets' | 'configs'>): readonly FileRef[] {
  return (kind === 'secret' ? spec.secrets : spec.configs) ?? [];
}

/** Services (names, sorted) that reference `name`. */
export function servicesUsing(kind: FileKind, name: string, specs: Iterable<ServiceSpec>): string[] {
  const out: string[] = [];
  for (const s of specs) if (refsOf(kind, s).some((r) => r.source === name)) out.push(s.name);
  return out.sort();
}

/** Refuses a spec that names a secret or config that does not exist (MESHD_NOT_FOUND naming it). */
export async function checkFileRefs(store: Store, spec: Pick<ServiceSpec, 'name' | 'secrets' | 'configs'>): Promise<void> {
  for (const kind of ['secret', 'config'] as const) {
    for (const r of refsOf(kind, spec)) {
      if (!(await store.get(FKEYS.object(kind, r.source)))) {
        throw new MeshError('MESHD_NOT_FOUND', `service ${spec.name}: no such ${kind}: ${r.source}`, { field: `${kind}s`, kind });
      }
    }
  }
}
