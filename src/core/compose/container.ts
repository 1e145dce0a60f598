/**
 * A Compose service's container keys → the spec's `container` (core/spec/container.ts):
 * `volumes` (short `SRC:DST[:ro|rw]` / `DST`, or the long form), `labels` (container
 * labels), `hostname`, `working_dir`, `user`, `entrypoint`, `read_only`, `init`, `dns_opt`;
 * and the top-level `volumes:` that declares named volumes. Named volumes are named
 * `<stack>_<key>` like docker's (translate.ts), unless `name:` or `external` says otherwise;
 * the Docker Engine of each node creates them on first use. Variants meshd does not implement
 * (relative bind paths, volume drivers and options, propagation, npipe/cluster mounts) are
 * refused naming the key. Pure.
 */
import { parseBytes } from '../spec/units.js';
import type { ContainerConfig, MountSpec } from '../spec/container.js';
import { asBool, asList, asObj, asString, asStringList, at, checkKeys, describe, fail, isObj, shellSplit } from './fields.js';

/** A mount as written; `volume` is the top-level volume key a named volume refers to. */
export type ComposeMount = MountSpec & { volume?: string };

export interface ComposeVolume {
  key: string;
  /** `name:` (used as is) or the external volume's name. */
  name?: string;
  external: boolean;
}

/** The Compose part of a service's container settings (mounts not yet named for the stack). */
export type ComposeContainer = Omit<ContainerConfig, 'mounts'> & { mounts?: ComposeMount[] };

const VOLUME_KEYS = ['driver', 'name', 'external'];
const VOLUME_UNSUPPORTED = ['driver_opts', 'labels'];

/** Top-level `volumes:` (a mapping of keys to null or {driver: local, name, external}). */
export function composeTopVolumes(v: unknown): ComposeVolume[] {
  if (v === undefined || v === null) return [];
  return Object.entries(asObj(v, 'volumes')).map(([key, x]) => {
    const path = `volumes.${key}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(key)) fail(path, 'volume keys are [A-Za-z0-9_.-], starting with a letter or digit');
    const out: ComposeVolume = { key, external: false };
    if (x === null || x === undefined) return out;
    const o = asObj(x, path);
    checkKeys(o, path, VOLUME_KEYS, VOLUME_UNSUPPORTED);
    if (o.driver !== undefined && o.driver !== 'local') fail(at(path, 'driver'), `only "local" is supported, got ${describe(o.driver)}`);
    if (o.name !== undefined) out.name = asString(o.name, at(path, 'name'));
    if (o.external !== undefined) {
      if (isObj(o.external)) {
        checkKeys(o.external, at(path, 'external'), ['name']);
        out.external = true;
        if (o.external.name !== undefined) out.name = asString(o.external.name, at(path, 'external.name'));
      } else out.external = asBool(o.external, at(path, 'external'));
    }
    return out;
  });
}

function mountSource(src: string, path: string, declared: ReadonlySet<string>): Pick<ComposeMount, 'type' | 'source' | 'volume'> {
  if (src.startsWith('/')) return { type: 'bind', source: src };
  if (src.startsWith('.') || src.startsWith('~')) fail(path, `bind source ${JSON.stringify(src)} must be an absolute path (the file's directory is not known on the nodes)`);
  if (!declared.has(src)) fail(path, `volume ${JSON.stringify(src)} is not declared in the top-level volumes`);
  return { type: 'volume', volume: src };
}

/** Short syntax: `DST` (anonymous volume), `SRC:DST`, `SRC:DST:ro|rw`. */
function shortMount(s: string, path: string, declared: ReadonlySet<string>): ComposeMount {
  const parts = s.split(':');
  if (parts.length === 1) return { type: 'volume', target: parts[0]! };
  if (parts.length > 3) fail(path, `${describe(s)} is not SRC:DST[:MODE]`);
  const mode = parts[2];
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') fail(path, `mode ${JSON.stringify(mode)} is not supported (ro or rw)`);
  return { ...mountSource(parts[0]!, path, declared), target: parts[1]!, ...(mode === 'ro' ? { readOnly: true } : {}) };
}

const LONG_KEYS = ['type', 'source', 'target', 'read_only', 'tmpfs'];
const LONG_UNSUPPORTED = ['bind', 'volume', 'consistency', 'image'];

/** Long syntax: `{type, source, target, read_only, tmpfs: {size, mode}}`. */
function longMount(o: Record<string, unknown>, path: string, declared: ReadonlySet<string>): ComposeMount {
  checkKeys(o, path, LONG_KEYS, LONG_UNSUPPORTED);
  const type = asString(o.type, at(path, 'type'));
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') fail(at(path, 'type'), `expected bind, volume or tmpfs, got ${describe(type)} (not supported by meshd)`);
  if (o.target === undefined) fail(at(path, 'target'), 'required');
  const m: ComposeMount = { type, target: asString(o.target, at(path, 'target')) };
  if (o.source !== undefined) {
    const src = asString(o.source, at(path, 'source'));
    if (type === 'tmpfs') fail(at(path, 'source'), 'a tmpfs mount takes no source');
    const got = mountSource(src, at(path, 'source'), declared);
    if (got.type !== type) fail(at(path, 'source'), `${JSON.stringify(src)} is a ${got.type} source, not a ${type} one`);
    Object.assign(m, got);
  } else if (type === 'bind') fail(at(path, 'source'), 'required for a bind mount');
  if (o.read_only !== undefined && asBool(o.read_only, at(path, 'read_only'))) m.readOnly = true;
  if (o.tmpfs !== undefined && o.tmpfs !== null) {
    const tp = at(path, 'tmpfs');
    if (type !== 'tmpfs') fail(tp, 'only with type tmpfs');
    const t = asObj(o.tmpfs, tp);
    checkKeys(t, tp, ['size', 'mode']);
    if (t.size !== undefined) {
      if (typeof t.size !== 'string' && typeof t.size !== 'number') fail(at(tp, 'size'), 'expected a size like 64m');
      m.tmpfsSizeBytes = parseBytes(t.size, at(tp, 'size'));
    }
    if (t.mode !== undefined) {
      if (typeof t.mode !== 'number' || !Number.isInteger(t.mode)) fail(at(tp, 'mode'), 'expected a number (YAML 0o1777 or 1023)');
      m.tmpfsMode = t.mode;
    }
  }
  return m;
}

/** `labels` / `deploy.labels`: a list of `K=V` (or `K`) or a mapping. */
export function composeLabels(v: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      const s = asString(x, `${path}[${i}]`);
      const eq = s.indexOf('=');
      out[eq < 0 ? s : s.slice(0, eq)] = eq < 0 ? '' : s.slice(eq + 1);
    });
    return out;
  }
  for (const [k, x] of Object.entries(asObj(v, path))) {
    if (x !== null && typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') fail(at(path, k), `expected a string, got ${describe(x)}`);
    out[k] = x === null ? '' : String(x);
  }
  return out;
}

/** The container keys of one service (`o` is the service mapping); undefined when it sets none. */
export function composeContainer(o: Record<string, unknown>, path: string, declaredVolumes: ReadonlySet<string>): ComposeContainer | undefined {
  const c: ComposeContainer = {};
  const has = (k: string) => o[k] !== undefined && o[k] !== null;
  if (has('volumes')) {
    c.mounts = asList(o.volumes, at(path, 'volumes')).map((x, i) => {
      const p = `${path}.volumes[${i}]`;
      return typeof x === 'string' ? shortMount(x, p, declaredVolumes) : longMount(asObj(x, p), p, declaredVolumes);
    });
  }
  if (has('labels')) c.labels = composeLabels(o.labels, at(path, 'labels'));
  if (has('hostname')) c.hostname = asString(o.hostname, at(path, 'hostname'));
  if (has('working_dir')) c.workdir = asString(o.working_dir, at(path, 'working_dir'));
  if (has('user')) c.user = typeof o.user === 'number' ? String(o.user) : asString(o.user, at(path, 'user'));
  if (has('entrypoint')) c.entrypoint = typeof o.entrypoint === 'string' ? shellSplit(o.entrypoint, at(path, 'entrypoint')) : asStringList(o.entrypoint, at(path, 'entrypoint'));
  if (has('read_only')) c.readOnly = asBool(o.read_only, at(path, 'read_only'));
  if (has('init')) c.init = asBool(o.init, at(path, 'init'));
  if (has('dns_opt')) c.dnsOptions = asStringList(o.dns_opt, at(path, 'dns_opt'));
  return Object.keys(c).length ? c : undefined;
}

/** The cluster name of a top-level volume for stack `stack`: `name:`, else `<stack>_<key>` (docker's). */
export function stackVolumeName(stack: string, v: ComposeVolume): string {
  return v.name ?? (v.external ? v.key : `${stack}_${v.key}`);
}
