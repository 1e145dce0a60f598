/**
 * Compose's `secrets:` / `configs:`, top level and per service (docker stack deploy's subset):
 *
 * - top level `secrets.<key>: {file: PATH}` (created by the stack as `<stack>-<key>`, or as
 *   `name:` when given) or `{external: true[, name: NAME]}` (must already exist); `environment`,
 *   `content`, `driver`, `template_driver`, `labels` are refused naming the key;
 * - per service, the short form `- KEY` or the long form `{source, target, uid, gid, mode}`.
 *   The default target is the KEY (docker: `/run/secrets/<key>`, configs `/<key>`), not the
 *   cluster name. `mode` is octal as Compose writes it (`0440`): YAML 1.2 reads that as the
 *   number 440, so a number's decimal digits are taken as octal digits (440 → 0o440); a
 *   string `"0440"` works too; a number with an 8 or 9 in it is refused rather than guessed.
 *
 * Pure: `file` paths stay as written (relative to the compose file); the CLI reads them.
 */
import type { FileKind } from '../spec/files.js';
import { FILE_NAME_RE } from '../spec/files.js';
import { asBool, asList, asObj, asString, asWhole, at, checkKeys, describe, fail, isObj } from './fields.js';

export interface ComposeFileObject {
  key: string;
  /** Path of the payload, as written (relative to the compose file). Absent for external objects. */
  file?: string;
  external: boolean;
  /** `name:` override (used as is). */
  name?: string;
}

export interface ComposeFileRef {
  /** The top-level key it names. */
  source: string;
  target?: string;
  uid?: number;
  gid?: number;
  mode?: number;
}

const TOP_KEYS = ['file', 'external', 'name'];
const TOP_UNSUPPORTED = ['environment', 'content', 'driver', 'driver_opts', 'template_driver', 'labels'];
const REF_KEYS = ['source', 'target', 'uid', 'gid', 'mode'];

/** Top-level `secrets` / `configs`. */
export function composeTopFiles(kind: FileKind, v: unknown): ComposeFileObject[] {
  const root = `${kind}s`;
  if (v === undefined || v === null) return [];
  return Object.entries(asObj(v, root)).map(([key, raw]) => {
    const path = at(root, key);
    if (!FILE_NAME_RE.test(key)) fail(path, `${kind} keys are [A-Za-z0-9][A-Za-z0-9_.-]*`);
    const o = asObj(raw, path);
    checkKeys(o, path, TOP_KEYS, TOP_UNSUPPORTED);
    const out: ComposeFileObject = { key, external: o.external === undefined ? false : asBool(o.external, at(path, 'external')) };
    if (o.name !== undefined) {
      out.name = asString(o.name, at(path, 'name'));
      if (!FILE_NAME_RE.test(out.name)) fail(at(path, 'name'), `${JSON.stringify(out.name)} is not a valid ${kind} name`);
    }
    if (o.file !== undefined) out.file = asString(o.file, at(path, 'file'));
    if (out.external && out.file !== undefined) fail(path, `an external ${kind} takes no file (it already exists)`);
    if (!out.external && out.file === undefined) fail(path, `needs file: PATH (or external: true)`);
    return out;
  });
}

function mode(v: unknown, path: string): number {
  const s = typeof v === 'number' && Number.isInteger(v) ? String(v) : typeof v === 'string' ? v.replace(/^0o/, '') : undefined;
  if (s === undefined) return fail(path, `expected an octal mode like 0440, got ${describe(v)}`);
  if (!/^[0-7]{1,4}$/.test(s)) fail(path, `${JSON.stringify(String(v))} is not an octal mode like 0440`);
  const n = parseInt(s, 8);
  if (n > 0o777) fail(path, 'at most 0777');
  return n;
}

function id(v: unknown, path: string): number {
  if (typeof v === 'string' && /^\d{1,10}$/.test(v)) return asWhole(Number(v), path);
  return asWhole(v, path);
}

/** A service's `secrets` / `configs`: every source must be declared at the top level. */
export function composeServiceFiles(kind: FileKind, v: unknown, path: string, declared: ReadonlySet<string>): ComposeFileRef[] {
  if (v === undefined || v === null) return [];
  return asList(v, path).map((item, i) => {
    const p = `${path}[${i}]`;
    let ref: ComposeFileRef;
    if (typeof item === 'string') ref = { source: item };
    else if (isObj(item)) {
      checkKeys(item, p, REF_KEYS, []);
      if (item.source === undefined) fail(at(p, 'source'), 'required');
      ref = { source: asString(item.source, at(p, 'source')) };
      if (item.target !== undefined) ref.target = asString(item.target, at(p, 'target'));
      if (item.uid !== undefined) ref.uid = id(item.uid, at(p, 'uid'));
      if (item.gid !== undefined) ref.gid = id(item.gid, at(p, 'gid'));
      if (item.mode !== undefined) ref.mode = mode(item.mode, at(p, 'mode'));
    } else return fail(p, `expected a ${kind} key or {source, target, uid, gid, mode}, got ${describe(item)}`);
    if (!declared.has(ref.source)) fail(p, `${kind} ${JSON.stringify(ref.source)} is not declared under the top-level ${kind}s`);
    return ref;
  });
}

/** A stack's secret or config: its cluster name (`<stack>_<key>` as docker names them, or `name:`, or the external one's). */
export interface StackFileObject {
  kind: FileKind;
  key: string;
  name: string;
  external: boolean;
  /** Payload path as written in the file (relative to the compose file); absent when external. */
  file?: string;
}

export function stackFileName(stack: string, o: ComposeFileObject): string {
  return o.name ?? (o.external ? o.key : `${stack}_${o.key}`);
}

/** The stack's objects of one kind that some service uses (others are neither created nor checked). */
export function stackFiles(kind: FileKind, stack: string, objects: readonly ComposeFileObject[], used: ReadonlySet<string>): StackFileObject[] {
  return objects.filter((o) => used.has(o.key)).map((o) => ({
    kind, key: o.key, name: stackFileName(stack, o), external: o.external, ...(o.file !== undefined ? { file: o.file } : {}),
  }));
}

/** A service's references in the manager's spec input: source = cluster name, target defaults to the KEY. */
export function specFileRefs(refs: readonly ComposeFileRef[] | undefined, names: ReadonlyMap<string, string>): Array<Record<string, unknown>> | undefined {
  if (!refs?.length) return undefined;
  return refs.map((r) => ({
    source: names.get(r.source)!, target: r.target ?? r.source,
    ...(r.uid !== undefined ? { uid: r.uid } : {}), ...(r.gid !== undefined ? { gid: r.gid } : {}), ...(r.mode !== undefined ? { mode: r.mode } : {}),
  }));
}
