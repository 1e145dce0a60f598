/**
 * The Compose file subset swarm users write for `docker stack deploy`, parsed with the
 * `yaml` package (YAML 1.2 core schema, so `8080:80` stays a string; `<<` merge keys
 * on for the usual `x-defaults: &d` anchors) into a checked model. Every error names the
 * key path (`services.web.deploy.replicaz: unknown key (did you mean replicas?)`).
 *
 * Supported: `version` (obsolete, read and not used), `services.<name>.{image, command,
 * environment, ports, networks (list, or map with `aliases`), healthcheck, stop_grace_period,
 * stop_signal, volumes, labels, hostname, working_dir, user, entrypoint, read_only, init,
 * dns_opt (compose/container.ts), deploy.{mode, replicas, labels, placement.{constraints,
 * preferences, max_replicas_per_node}, update_config, rollback_config, restart_policy,
 * endpoint_mode, resources}}`, top-level `networks.<name>.{driver: overlay|macvlan, driver_opts,
 * labels, internal, ipam.config[0].{subnet, gateway, ip_range, aux_addresses}, attachable,
 * external, name}` and `volumes.<name>.{driver: local,
 * name, external}`, top-level and service-level `secrets` / `configs` (compose/files.ts).
 * Valid Compose keys meshd does not implement (build, depends_on, …) are REFUSED naming the key (MESHD_UNSUPPORTED) — docker ignores some of
 * them with a warning; meshd never accepts a key it then drops.
 * Variables (`${VAR}`, `$$`) are interpolated first (interpolate.ts). Not supported:
 * multiple files, `env_file`, `extends`.
 *
 * meshd's own extension keys under a service (Compose's `x-` prefix, so docker ignores them):
 * `x-meshd-runtime: netns | docker` (absent: automatic from the image, see
 * spec/runtime.ts; with netns the image is only a label and the command runs from the
 * host's filesystem); `x-meshd-allow: [svc, …]` (issue #19: only these services may connect
 * to the service's tasks, `netctl service create --allow-from`; keys of this file's services
 * become their stack names, other names are cluster service names as is; `[]` = nobody);
 * `x-meshd-lb-algorithm: random | round-robin | source-hash` and
 * `x-meshd-lb-locality: none | node | zone` (`--lb-algorithm` / `--lb-locality`, issue 19).
 * Under a network, `x-meshd-default-deny: true` (`network create --default-deny`). Any other
 * `x-meshd-*` key is refused (a typo would silently change where the service runs or who may
 * reach it); other `x-*` keys pass as the Compose spec says.
 */
import { parseDocument } from 'yaml';
import { composeServiceFiles, composeTopFiles, type ComposeFileObject, type ComposeFileRef } from './files.js';
import { MeshError } from '../errors.js';
import type { FailureAction, PlacementPreference, RestartCondition, RuntimeKind, UpdateOrder } from '../spec/types.js';
import { RUNTIME_KINDS } from '../spec/types.js';
import {
  asEnum, asList, asNumber, asObj, asString, asStringList, asWhole, at, checkKeys, describe, fail, 
  parseComposeDuration, shellSplit, type Obj,
} from './fields.js';
import { interpolate, type EnvLookup } from './interpolate.js';
import { composeHealthcheck } from './healthcheck.js';
import type { HealthcheckSpec } from '../health/spec.js';
import { composeResources, type ComposeResources } from './resources.js';
import { composeNetwork, type ComposeNetwork } from './networks.js';
import { composeContainer, composeLabels, composeTopVolumes, type ComposeContainer, type ComposeVolume } from './container.js';

export interface ComposePort {
  /** 0 = not published (target only). */
  published: number;
  target: number;
  proto: 'tcp' | 'udp';
  mode: 'ingress' | 'host';
  /** `x-meshd-proxy-protocol: v1|v2` on a long-syntax port entry (see PROXY_PROTOCOL_KEY). */
  proxyProtocol?: 'v1' | 'v2';
}

/** Present keys only: the translator fills the rest with the manager's defaults. */
export interface ComposeUpdateConfig {
  parallelism?: number;
  delayMs?: number;
  failureAction?: FailureAction;
  monitorMs?: number;
  maxFailureRatio?: number;
  order?: UpdateOrder;
}
export interface ComposeRestartPolicy {
  condition?: RestartCondition;
  delayMs?: number;
  maxAttempts?: number;
  windowMs?: number;
}

export interface ComposeService {
  /** The key under `services:` (not yet prefixed with the stack name). */
  name: string;
  image: string;
  /** `x-meshd-runtime`; absent = automatic. */
  runtime?: RuntimeKind;
  /** `x-meshd-lb-algorithm` / `x-meshd-lb-locality` (the spec's `lb`); absent = defaults. */
  lb?: { algorithm?: 'random' | 'round-robin' | 'source-hash'; locality?: 'none' | 'node' | 'zone' };
  command?: string[];
  env: Record<string, string>;
  ports: ComposePort[];
  /** Keys of top-level `networks` (or `default`), in file order. */
  networks: string[];
  /** `networks.<key>.aliases` of the map form, by network key (only keys that have some). */
  aliases: Record<string, string[]>;
  mode: 'replicated' | 'global';
  /** Only for replicated; undefined = 1. */
  replicas?: number;
  constraints: string[];
  preferences: PlacementPreference[];
  endpointMode?: 'vip' | 'dnsrr';
  updateConfig: ComposeUpdateConfig;
  rollbackConfig: ComposeUpdateConfig;
  restartPolicy: ComposeRestartPolicy;
  /** `healthcheck` (compose/healthcheck.ts); absent = the image's own. */
  healthcheck?: HealthcheckSpec;
  /** `stop_grace_period` (ms) and `stop_signal` (checked by the manager's schema: core/spec/stop.ts). */
  stopGracePeriodMs?: number;
  stopSignal?: string;
  /** `deploy.resources` (reservations → the spec's resources, limits → its limits). */
  resources?: ComposeResources;
  /** `deploy.placement.max_replicas_per_node`. */
  maxReplicasPerNode?: number;
  /** `deploy.labels` (service labels). */
  labels?: Record<string, string>;
  /** volumes, labels, hostname, working_dir, user, entrypoint, read_only, init, dns_opt. */
  container?: ComposeContainer;
  /** `secrets` / `configs` (compose/files.ts): keys of the top-level ones. */
  secrets?: ComposeFileRef[];
  configs?: ComposeFileRef[];
  /** `x-meshd-allow` (issue #19): compose service keys or cluster service names; absent = open. */
  allowFrom?: string[];
}

export interface ComposeFile {
  services: ComposeService[];
  networks: ComposeNetwork[];
  /** Top-level `volumes` (named volumes the services mount). */
  volumes: ComposeVolume[];
  /** Top-level `secrets` / `configs` (compose/files.ts). */
  secrets: ComposeFileObject[];
  configs: ComposeFileObject[];
  /** Interpolation notes (an unset variable), one line each. */
  warnings: string[];
}

const TOP_KEYS = ['version', 'services', 'networks', 'volumes', 'secrets', 'configs'];
/** Valid Compose meshd does not implement: refused naming the key (fields.ts checkKeys). */
const TOP_UNSUPPORTED = ['name', 'include'];
const SERVICE_KEYS = ['image', 'command', 'environment', 'ports', 'networks', 'deploy', 'healthcheck', 'stop_grace_period', 'stop_signal',
  'volumes', 'labels', 'hostname', 'working_dir', 'user', 'entrypoint', 'read_only', 'init', 'dns_opt', 'secrets', 'configs'];
const SERVICE_UNSUPPORTED = ['build', 'container_name', 'depends_on', 'links', 'restart', 'logging',
  'tty', 'stdin_open', 'ulimits', 'cap_add', 'cap_drop', 'dns', 'dns_search', 'extra_hosts',
  'env_file', 'extends', 'devices', 'privileged', 'sysctls', 'tmpfs', 'domainname', 'mac_address', 'network_mode', 'pid', 'ipc',
  'security_opt', 'shm_size', 'userns_mode', 'expose', 'external_links', 'isolation', 'cgroup_parent', 'platform', 'profiles',
  'pull_policy', 'runtime', 'scale', 'storage_opt', 'volumes_from', 'credential_spec', 'group_add', 'oom_score_adj', 'mem_limit',
  'cpus', 'cpu_shares', 'memswap_limit', 'stop_grace', 'annotations'];
const DEPLOY_KEYS = ['mode', 'replicas', 'placement', 'update_config', 'rollback_config', 'restart_policy', 'endpoint_mode', 'resources', 'labels'];
const UPDATE_KEYS = ['parallelism', 'delay', 'failure_action', 'monitor', 'max_failure_ratio', 'order'];
const RESTART_KEYS = ['condition', 'delay', 'max_attempts', 'window'];
/** meshd's extension on a long-syntax port entry: a PROXY protocol header for the task (v1 | v2). */
export const PROXY_PROTOCOL_KEY = 'x-meshd-proxy-protocol';
const PORT_KEYS = ['target', 'published', 'protocol', 'mode', PROXY_PROTOCOL_KEY];
/** meshd's extension keys under a service (see the header). */
export const RUNTIME_KEY = 'x-meshd-runtime';
export const ALLOW_KEY = 'x-meshd-allow';
export const LB_ALGORITHM_KEY = 'x-meshd-lb-algorithm';
export const LB_LOCALITY_KEY = 'x-meshd-lb-locality';
const SERVICE_EXTENSIONS = [RUNTIME_KEY, ALLOW_KEY, LB_ALGORITHM_KEY, LB_LOCALITY_KEY];
/** Compose's own rule for service and network keys. */
const KEY_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;

export interface ParseOptions {
  /** Variables for `${VAR}` interpolation (the CLI passes its environment); default: none set. */
  env?: EnvLookup;
}

/** YAML text → checked model. Throws MESHD_BAD_ARGUMENT naming the line (syntax) or key path (content). */
export function parseCompose(text: string, opts: ParseOptions = {}): ComposeFile {
  const doc = parseDocument(text, { merge: true, uniqueKeys: true, prettyErrors: true });
  const err = doc.errors[0];
  if (err) {
    const pos = err.linePos?.[0];
    const first = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new MeshError('MESHD_BAD_ARGUMENT', `compose file${pos ? ` line ${pos.line}, column ${pos.col}` : ''}: ${first}`, pos ? { line: pos.line, column: pos.col } : undefined);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `compose file: ${(e as Error).message.split('\n')[0]}`);
  }
  const early: string[] = [];
  const file = composeFromObject(interpolate(raw, opts.env ?? (() => undefined), early));
  return { ...file, warnings: [...early, ...file.warnings] };
}

/** The model from an already-parsed value (what `parseCompose` does after YAML). */
export function composeFromObject(raw: unknown): ComposeFile {
  const warnings: string[] = [];
  const top = asObj(raw, '');
  checkKeys(top, '', TOP_KEYS, TOP_UNSUPPORTED);
  if (top.version !== undefined && typeof top.version !== 'string' && typeof top.version !== 'number') fail('version', `expected a string, got ${describe(top.version)}`);
  const netsRaw = top.networks === undefined || top.networks === null ? {} : asObj(top.networks, 'networks');
  const networks = Object.entries(netsRaw).map(([k, v]) => composeNetwork(k, v));
  const svcsRaw = asObj(top.services, 'services');
  if (Object.keys(svcsRaw).length === 0) fail('services', 'at least one service is needed');
  const declared = new Set(networks.map((n) => n.key));
  const volumes = composeTopVolumes(top.volumes);
  const declaredVolumes = new Set(volumes.map((v) => v.key));
  const secrets = composeTopFiles('secret', top.secrets);
  const configs = composeTopFiles('config', top.configs);
  const files = { secret: new Set(secrets.map((x) => x.key)), config: new Set(configs.map((x) => x.key)) };
  const services = Object.entries(svcsRaw).map(([k, v]) => service(k, v, declared, declaredVolumes, files));
  return { services, networks, volumes, secrets, configs, warnings };
}

function service(name: string, v: unknown, declared: ReadonlySet<string>, declaredVolumes: ReadonlySet<string>, files: Readonly<Record<'secret' | 'config', ReadonlySet<string>>>): ComposeService {
  const path = `services.${name}`;
  if (!KEY_RE.test(name)) fail(path, 'service keys are [a-zA-Z0-9._-], starting with a letter or digit');
  const o = asObj(v, path);
  checkKeys(o, path, SERVICE_KEYS, SERVICE_UNSUPPORTED);
  if (o.image === undefined) fail(at(path, 'image'), 'required (meshd does not build images)');
  const image = asString(o.image, at(path, 'image'));
  if (!image.trim()) fail(at(path, 'image'), 'must not be empty');
  const s: ComposeService = {
    name, image, env: environment(o.environment, at(path, 'environment')),
    ports: o.ports === undefined ? [] : asList(o.ports, at(path, 'ports')).map((p, i) => port(p, `${path}.ports[${i}]`)),
    ...serviceNetworks(o.networks, at(path, 'networks'), declared),
    mode: 'replicated', constraints: [], preferences: [], updateConfig: {}, rollbackConfig: {}, restartPolicy: {},
  };
  for (const k of Object.keys(o)) {
    if (k.startsWith('x-meshd-') && !SERVICE_EXTENSIONS.includes(k)) fail(at(path, k), `unknown meshd key (known: ${SERVICE_EXTENSIONS.join(', ')})`);
  }
  if (o[RUNTIME_KEY] !== undefined) s.runtime = asEnum(o[RUNTIME_KEY], at(path, RUNTIME_KEY), RUNTIME_KINDS);
  if (o[ALLOW_KEY] !== undefined && o[ALLOW_KEY] !== null) s.allowFrom = asStringList(o[ALLOW_KEY], at(path, ALLOW_KEY));
  if (o[LB_ALGORITHM_KEY] !== undefined) s.lb = { ...s.lb, algorithm: asEnum(o[LB_ALGORITHM_KEY], at(path, LB_ALGORITHM_KEY), ['random', 'round-robin', 'source-hash'] as const) };
  if (o[LB_LOCALITY_KEY] !== undefined) s.lb = { ...s.lb, locality: asEnum(o[LB_LOCALITY_KEY], at(path, LB_LOCALITY_KEY), ['none', 'node', 'zone'] as const) };
  if (o.command !== undefined && o.command !== null) {
    const cp = at(path, 'command');
    s.command = typeof o.command === 'string' ? shellSplit(o.command, cp) : asStringList(o.command, cp);
    if (s.command.length === 0) fail(cp, 'must not be empty');
  }
  if (o.healthcheck !== undefined && o.healthcheck !== null) s.healthcheck = composeHealthcheck(o.healthcheck, at(path, 'healthcheck'));
  if (o.stop_grace_period !== undefined && o.stop_grace_period !== null) s.stopGracePeriodMs = parseComposeDuration(o.stop_grace_period, at(path, 'stop_grace_period'));
  if (o.stop_signal !== undefined && o.stop_signal !== null) s.stopSignal = asString(o.stop_signal, at(path, 'stop_signal'));
  const container = composeContainer(o, path, declaredVolumes);
  if (container) s.container = container;
  for (const kind of ['secret', 'config'] as const) {
    const refs = composeServiceFiles(kind, o[`${kind}s`], at(path, `${kind}s`), files[kind]);
    if (refs.length) s[`${kind}s`] = refs;
  }
  if (o.deploy !== undefined && o.deploy !== null) deploy(s, asObj(o.deploy, at(path, 'deploy')), at(path, 'deploy'));
  return s;
}

const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,255}$/;

/** `environment` as a list (`A=1`) or a mapping (`A: 1`); values become strings. */
function environment(v: unknown, path: string): Record<string, string> {
  const env: Record<string, string> = {};
  if (v === undefined || v === null) return env;
  const put = (k: string, val: string, p: string) => {
    if (!ENV_KEY_RE.test(k)) fail(p, `${JSON.stringify(k)} is not a valid variable name`);
    if (k === '__proto__') fail(p, 'forbidden variable name');
    env[k] = val;
  };
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      const p = `${path}[${i}]`;
      const s = asString(x, p);
      const eq = s.indexOf('=');
      if (eq < 0) fail(p, `${JSON.stringify(s)} has no value: write NAME=VALUE (netctl does not read variables from your shell)`);
      put(s.slice(0, eq), s.slice(eq + 1), p);
    });
    return env;
  }
  for (const [k, x] of Object.entries(asObj(v, path))) {
    const p = at(path, k);
    if (x === null || x === undefined) fail(p, 'has no value (netctl does not read variables from your shell)');
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') fail(p, `expected a string, number or boolean, got ${describe(x)}`);
    put(k, String(x), p);
  }
  return env;
}

function portNumber(s: string | number, path: string, whole: unknown): number {
  const n = typeof s === 'number' ? s : /^\d{1,5}$/.test(s) ? Number(s) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) fail(path, `${describe(whole)} is not a port mapping (ports are 1..65535; use PUBLISHED:TARGET[/PROTO], e.g. "8080:80")`);
  return n;
}

/** Short syntax `"8080:80"`, `"8080:80/udp"`, `"80"`, `80`, or the long form mapping. */
function port(v: unknown, path: string): ComposePort {
  if (typeof v === 'number') return { published: 0, target: portNumber(v, path, v), proto: 'tcp', mode: 'ingress' };
  if (typeof v === 'string') {
    const m = /^(?:([^:/]+):)?([^:/]+)(?:\/(.*))?$/.exec(v.trim());
    if (!m) fail(path, `${describe(v)} is not a port mapping (use PUBLISHED:TARGET[/PROTO], e.g. "8080:80"; host IPs and ranges are not supported)`);
    const proto = m[3] ?? 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') fail(path, `${describe(v)} is not a port mapping (protocol must be tcp or udp)`);
    return { published: m[1] === undefined ? 0 : portNumber(m[1], path, v), target: portNumber(m[2]!, path, v), proto, mode: 'ingress' };
  }
  const o = asObj(v, path);
  checkKeys(o, path, PORT_KEYS, ['host_ip', 'name', 'app_protocol']);
  if (o.target === undefined) fail(at(path, 'target'), 'required');
  const num = (x: unknown, p: string) => asWhole(x, p, 1, 65535);
  return {
    target: num(o.target, at(path, 'target')),
    published: o.published === undefined ? 0 : num(o.published, at(path, 'published')),
    proto: o.protocol === undefined ? 'tcp' : asEnum(o.protocol, at(path, 'protocol'), ['tcp', 'udp'] as const),
    mode: o.mode === undefined ? 'ingress' : asEnum(o.mode, at(path, 'mode'), ['ingress', 'host'] as const),
    ...(o[PROXY_PROTOCOL_KEY] === undefined ? {} : { proxyProtocol: asEnum(o[PROXY_PROTOCOL_KEY], at(path, PROXY_PROTOCOL_KEY), ['v1', 'v2'] as const) }),
  };
}

/**
 * A list of network keys, or a mapping key → null | {aliases}; each must be declared (or be
 * `default`). Aliases are kept as written; the translator checks them as DNS labels.
 */
function serviceNetworks(v: unknown, path: string, declared: ReadonlySet<string>): { networks: string[]; aliases: Record<string, string[]> } {
  const aliases: Record<string, string[]> = {};
  if (v === undefined || v === null) return { networks: ['default'], aliases };
  const check = (k: string, p: string) => {
    if (k !== 'default' && !declared.has(k)) fail(p, `network ${JSON.stringify(k)} is not declared in the top-level networks`);
    return k;
  };
  if (Array.isArray(v)) {
    const out = v.map((x, i) => check(asString(x, `${path}[${i}]`), `${path}[${i}]`));
    if (out.length === 0) fail(path, 'must not be empty (leave it out for the stack\'s default network)');
    return { networks: [...new Set(out)], aliases };
  }
  const o = asObj(v, path);
  const out = Object.entries(o).map(([k, x]) => {
    const p = at(path, k);
    if (x !== null && x !== undefined) {
      const n = asObj(x, p);
      checkKeys(n, p, ['aliases'], ['ipv4_address', 'priority']);
      if (n.aliases !== undefined && n.aliases !== null) {
        const list = asStringList(n.aliases, at(p, 'aliases'));
        if (list.length) aliases[k] = list;
      }
    }
    return check(k, p);
  });
  if (out.length === 0) fail(path, 'must not be empty (leave it out for the stack\'s default network)');
  return { networks: out, aliases };
}

function deploy(s: ComposeService, o: Obj, path: string): void {
  checkKeys(o, path, DEPLOY_KEYS);
  if (o.mode !== undefined) s.mode = asEnum(o.mode, at(path, 'mode'), ['replicated', 'global'] as const);
  if (o.replicas !== undefined) {
    if (s.mode === 'global') fail(at(path, 'replicas'), 'cannot be used with mode global');
    s.replicas = asWhole(o.replicas, at(path, 'replicas'), 0, 10000);
  }
  if (o.labels !== undefined && o.labels !== null) s.labels = composeLabels(o.labels, at(path, 'labels'));
  if (o.endpoint_mode !== undefined) s.endpointMode = asEnum(o.endpoint_mode, at(path, 'endpoint_mode'), ['vip', 'dnsrr'] as const);
  if (o.resources !== undefined && o.resources !== null) s.resources = composeResources(o.resources, at(path, 'resources'));
  if (o.placement !== undefined && o.placement !== null) {
    const pp = at(path, 'placement');
    const p = asObj(o.placement, pp);
    checkKeys(p, pp, ['constraints', 'preferences', 'max_replicas_per_node']);
    if (p.constraints !== undefined) s.constraints = asStringList(p.constraints, at(pp, 'constraints'));
    if (p.max_replicas_per_node !== undefined && p.max_replicas_per_node !== null) {
      if (s.mode === 'global') fail(at(pp, 'max_replicas_per_node'), 'can only be used with mode replicated');
      s.maxReplicasPerNode = asWhole(p.max_replicas_per_node, at(pp, 'max_replicas_per_node'), 0, 10000);
    }
    if (p.preferences !== undefined) {
      s.preferences = asList(p.preferences, at(pp, 'preferences')).map((x, i) => {
        const xp = `${pp}.preferences[${i}]`;
        const po = asObj(x, xp);
        checkKeys(po, xp, ['spread'], []);
        return { spread: asString(po.spread, at(xp, 'spread')) };
      });
    }
  }
  if (o.update_config !== undefined && o.update_config !== null) s.updateConfig = updateConfig(o.update_config, at(path, 'update_config'));
  if (o.rollback_config !== undefined && o.rollback_config !== null) s.rollbackConfig = updateConfig(o.rollback_config, at(path, 'rollback_config'));
  if (o.restart_policy !== undefined && o.restart_policy !== null) {
    const rp = at(path, 'restart_policy');
    const r = asObj(o.restart_policy, rp);
    checkKeys(r, rp, RESTART_KEYS, []);
    if (r.condition !== undefined) s.restartPolicy.condition = asEnum(r.condition, at(rp, 'condition'), ['none', 'on-failure', 'any'] as const);
    if (r.delay !== undefined) s.restartPolicy.delayMs = parseComposeDuration(r.delay, at(rp, 'delay'));
    if (r.max_attempts !== undefined) s.restartPolicy.maxAttempts = asWhole(r.max_attempts, at(rp, 'max_attempts'));
    if (r.window !== undefined) s.restartPolicy.windowMs = parseComposeDuration(r.window, at(rp, 'window'));
  }
}

function updateConfig(v: unknown, path: string): ComposeUpdateConfig {
  const o = asObj(v, path);
  checkKeys(o, path, UPDATE_KEYS, []);
  const u: ComposeUpdateConfig = {};
  if (o.parallelism !== undefined) u.parallelism = asWhole(o.parallelism, at(path, 'parallelism'));
  if (o.delay !== undefined) u.delayMs = parseComposeDuration(o.delay, at(path, 'delay'));
  if (o.failure_action !== undefined) u.failureAction = asEnum(o.failure_action, at(path, 'failure_action'), ['pause', 'continue', 'rollback'] as const);
  if (o.monitor !== undefined) u.monitorMs = parseComposeDuration(o.monitor, at(path, 'monitor'));
  if (o.max_failure_ratio !== undefined) u.maxFailureRatio = asNumber(o.max_failure_ratio, at(path, 'max_failure_ratio'), 0, 1);
  if (o.order !== undefined) u.order = asEnum(o.order, at(path, 'order'), ['stop-first', 'start-first'] as const);
  return u;
}
