/**
 * Pure parsers of `netctl service` flags (docker's syntax). They only shape input; the
 * manager validates the resulting spec (ranges, names) and answers with the field at fault.
 */
import { MeshError } from '../core/errors.js';
import { runtimeKind } from '../core/spec/runtime.js';
import type { RuntimeKind } from '../core/spec/types.js';

export interface PortInput {
  published: number;
  target: number;
  proto: 'tcp' | 'udp';
  mode: 'ingress' | 'host';
  policy: 'cluster' | 'local';
  /** `proxy-protocol=v1|v2`: the manager refuses it with mode host, policy local or udp. */
  proxyProtocol?: 'v1' | 'v2';
}

function port(s: string, what: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) throw new MeshError('MESHD_BAD_ARGUMENT', `${what}: invalid port ${JSON.stringify(s)}`);
  return Number(s);
}

/**
 * `-p 8080:80`, `-p 8080:80/udp`, `-p 80` (target only) or the long form
 * `mode=ingress,published=8080,target=80,protocol=tcp,policy=local[,proxy-protocol=v1|v2]`.
 */
export function parsePublish(s: string): PortInput {
  const out: PortInput = { published: 0, target: 0, proto: 'tcp', mode: 'ingress', policy: 'cluster' };
  if (s.includes('=')) {
    for (const part of s.split(',')) {
      const i = part.indexOf('=');
      const k = part.slice(0, i).trim();
      const v = part.slice(i + 1).trim();
      if (i < 0) throw new MeshError('MESHD_BAD_ARGUMENT', `--publish: ${JSON.stringify(part)} is not key=value`);
      if (k === 'published') out.published = port(v, '--publish published');
      else if (k === 'target') out.target = port(v, '--publish target');
      else if (k === 'protocol' || k === 'proto') {
        if (v !== 'tcp' && v !== 'udp') throw new MeshError('MESHD_BAD_ARGUMENT', `--publish protocol must be tcp or udp, got ${JSON.stringify(v)}`);
        out.proto = v;
      } else if (k === 'mode') {
        if (v !== 'ingress' && v !== 'host') throw new MeshError('MESHD_BAD_ARGUMENT', `--publish mode must be ingress or host, got ${JSON.stringify(v)}`);
        out.mode = v;
      } else if (k === 'policy') {
        if (v !== 'cluster' && v !== 'local') throw new MeshError('MESHD_BAD_ARGUMENT', `--publish policy must be cluster or local, got ${JSON.stringify(v)}`);
        out.policy = v;
      } else if (k === 'proxy-protocol') {
        if (v !== 'v1' && v !== 'v2') throw new MeshError('MESHD_BAD_ARGUMENT', `--publish proxy-protocol must be v1 or v2, got ${JSON.stringify(v)}`);
        out.proxyProtocol = v;
      } else throw new MeshError('MESHD_BAD_ARGUMENT', `--publish: unknown key ${JSON.stringify(k)}`);
    }
  } else {
    const m = /^(?:(\d+):)?(\d+)(?:\/(tcp|udp))?$/.exec(s.trim());
    if (!m) throw new MeshError('MESHD_BAD_ARGUMENT', `--publish: ${JSON.stringify(s)} is not PUBLISHED:TARGET[/PROTO]`);
    if (m[1] !== undefined) out.published = port(m[1], '--publish');
    out.target = port(m[2]!, '--publish');
    if (m[3]) out.proto = m[3] as 'tcp' | 'udp';
  }
  if (out.target === 0) throw new MeshError('MESHD_BAD_ARGUMENT', `--publish ${JSON.stringify(s)}: target port required`);
  return out;
}

/** One `--network` value: a name, or docker's long form `name=app,alias=web,alias=api`. */
export interface NetworkInput {
  target: string;
  aliases: string[];
}

/**
 * `--network app` or `--network name=app,alias=web` (`target=` is taken for `name=`;
 * `alias` may repeat). Names and aliases are checked by the manager (DNS labels).
 */
export function parseNetwork(s: string): NetworkInput {
  if (!s.includes('=')) {
    if (!s.trim()) throw new MeshError('MESHD_BAD_ARGUMENT', '--network: empty network name');
    return { target: s.trim(), aliases: [] };
  }
  const out: NetworkInput = { target: '', aliases: [] };
  for (const part of s.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) throw new MeshError('MESHD_BAD_ARGUMENT', `--network: ${JSON.stringify(part)} is not key=value`);
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (!v) throw new MeshError('MESHD_BAD_ARGUMENT', `--network: ${k} has no value`);
    if (k === 'name' || k === 'target') out.target = v;
    else if (k === 'alias') out.aliases.push(v);
    else throw new MeshError('MESHD_BAD_ARGUMENT', `--network: unknown key ${JSON.stringify(k)} (use name=NET,alias=NAME)`);
  }
  if (!out.target) throw new MeshError('MESHD_BAD_ARGUMENT', `--network ${JSON.stringify(s)}: name=NET required`);
  return out;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations: `500ms`, `1s`, `1.5m`, `2h`, `0`. Returns milliseconds. */
export function parseDuration(s: string, what: string): number {
  if (s === '0') return 0;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(s.trim());
  if (!m) throw new MeshError('MESHD_BAD_ARGUMENT', `${what}: invalid duration ${JSON.stringify(s)} (use e.g. 500ms, 1s, 2m)`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

/** `--replicas` and friends: a decimal integer as typed (range checks are the manager's). */
export function parseCount(s: string, what: string): number {
  if (!/^-?\d+$/.test(s.trim())) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} must be an integer, got ${JSON.stringify(s)}`);
  return Number(s);
}

/** `web=9` → ['web', 9]. */
export function parseScale(s: string): [string, number] {
  const i = s.indexOf('=');
  if (i <= 0) throw new MeshError('MESHD_BAD_ARGUMENT', `scale: ${JSON.stringify(s)} is not SERVICE=REPLICAS`);
  return [s.slice(0, i), parseCount(s.slice(i + 1), `scale ${s.slice(0, i)}`)];
}

/** The publish key a `--publish-rm` names: `8080`, `8080/udp` or a full spec. */
export function publishKey(s: string): { published: number; proto: 'tcp' | 'udp' } {
  const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(s.trim());
  if (m) return { published: port(m[1]!, '--publish-rm'), proto: (m[2] as 'tcp' | 'udp' | undefined) ?? 'tcp' };
  const p = parsePublish(s);
  return { published: p.published, proto: p.proto };
}

/**
 * `--runtime netns|docker|auto`: the runtime, or undefined for `auto` (chosen from the
 * image: `whoami` → netns, any other image → docker).
 */
export function parseRuntime(s: string, what = '--runtime'): RuntimeKind | undefined {
  const v = s.trim().toLowerCase();
  if (v === 'auto') return undefined;
  const k = runtimeKind(v);
  if (!k) throw new MeshError('MESHD_BAD_ARGUMENT', `${what} must be netns, docker or auto, got ${JSON.stringify(s)}`);
  return k;
}

/** Docker's health flags as commander names them (`--no-healthcheck` sets `healthcheck: false`). */
export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string;
  healthStartPeriod?: string;
  healthcheck?: boolean;
  /** `--stop-grace-period`, `--stop-signal` (added with the health flags on create and update). */
  stopGracePeriod?: string;
  stopSignal?: string;
}

/**
 * The spec's `healthcheck` from docker's flags, over `base` (the stored check on update), or
 * undefined when no flag is given and there is no base. `--health-cmd` is a shell command
 * (docker: CMD-SHELL); a duration or count of 0 removes that override (the image's or the
 * default applies, as in docker). `--no-healthcheck` disables every check, the image's too,
 * and conflicts with the other flags (docker refuses the mix too). Ranges are the manager's.
 */
export function healthcheckFrom(o: HealthFlags, base?: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  const given = (['healthCmd', 'healthInterval', 'healthTimeout', 'healthRetries', 'healthStartPeriod'] as const).filter((k) => o[k] !== undefined);
  if (o.healthcheck === false) {
    if (given.length) throw new MeshError('MESHD_BAD_ARGUMENT', `--no-healthcheck conflicts with --${given[0]!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    return { disable: true };
  }
  if (!given.length) return base ? { ...base } : undefined;
  const h: Record<string, unknown> = { ...(base ?? {}) };
  delete h.disable;
  const set = (k: string, v: number) => {
    if (v === 0) delete h[k];
    else h[k] = v;
  };
  if (o.healthCmd !== undefined) {
    if (!o.healthCmd.trim()) throw new MeshError('MESHD_BAD_ARGUMENT', '--health-cmd must not be empty');
    h.test = ['CMD-SHELL', o.healthCmd];
  }
  if (o.healthInterval !== undefined) set('intervalMs', parseDuration(o.healthInterval, '--health-interval'));
  if (o.healthTimeout !== undefined) set('timeoutMs', parseDuration(o.healthTimeout, '--health-timeout'));
  if (o.healthRetries !== undefined) set('retries', parseCount(o.healthRetries, '--health-retries'));
  if (o.healthStartPeriod !== undefined) set('startPeriodMs', parseDuration(o.healthStartPeriod, '--health-start-period'));
  return h;
}
