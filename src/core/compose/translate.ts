/**
 * A parsed Compose file + a stack name → what the manager is asked to create: overlay
 * network requests and complete, validated ServiceSpecs.
 *
 * Naming: docker stack names objects `<stack>_<svc>`; meshd service and network names
 * must be DNS labels (no `_`), so they are `<stack>-<svc>` / `<stack>-<net>`, and a
 * service without `networks` joins `<stack>-default`. Stack names are `[a-z0-9]` only
 * (no `-`), which makes "which stack owns `a-b-c`" unambiguous: the part before the
 * first `-`. ServiceSpec has no labels, so ownership is also recorded in the env var
 * STACK_ENV (the task sees `MESHD_STACK_NAMESPACE=<stack>`, like docker's
 * `com.docker.stack.namespace` label); `stack ls` groups by it.
 *
 * Short names: like docker, every service also gets its Compose key (`web`) as a network
 * alias on each network it joins, plus the file's own `networks.<net>.aliases`, so
 * `http://web/` works inside the stack while `<stack>-web` keeps working everywhere.
 */
import { MeshError, isMeshError } from '../errors.js';
import { parseConstraint } from '../scheduler/constraint.js';
import type { ServiceSpec } from '../spec/types.js';
import { parseServiceSpec } from '../spec/validate.js';
import type { ComposeFile, ComposeService } from './parse.js';
import { stackVolumeName, type ComposeVolume } from './container.js';
import { specFileRefs, stackFileName, stackFiles, type StackFileObject } from './files.js';

/** Env var that marks a service as part of a stack (value: the stack name). */
export const STACK_ENV = 'MESHD_STACK_NAMESPACE';
const STACK_RE = /^[a-z0-9]{1,30}$/;
const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface StackNetwork {
  /** Key in the Compose file (`default` for the implicit one). */
  key: string;
  /** Name in the cluster: `<stack>-<key>`, or the `name:` given, or the external network's name. */
  name: string;
  /** External networks must already exist; they are neither created nor removed by the stack. */
  external: boolean;
  /** Body of POST /networks (absent for external networks). */
  request?: {
    name: string; driver: string; attachable: boolean; subnet?: string; gateway?: string; ipRange?: string;
    auxAddresses?: Record<string, string>; internal?: boolean; labels?: Record<string, string>; options?: Record<string, string>;
    defaultDeny?: boolean; ipv6?: boolean; subnet6?: string;
  };
}

export interface StackPlan {
  stack: string;
  /** Only networks some service uses, in first-use order. */
  networks: StackNetwork[];
  /** Complete specs (defaults filled by the manager's own schema), in file order. */
  services: ServiceSpec[];
  /** Secrets and configs the services use (compose/files.ts): created before the services, unless external. */
  files: StackFileObject[];
  warnings: string[];
}

/** Throws unless `name` is a valid stack name: 1-30 of [a-z0-9]. */
export function validateStackName(name: string): string {
  if (!STACK_RE.test(name)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid stack name ${JSON.stringify(name)}: 1-30 characters [a-z0-9] (no "-": object names are <stack>-<name>)`);
  }
  return name;
}

/** `<stack>-<key>`: the cluster name of a stack's service or network. */
export function stackObjectName(stack: string, key: string): string {
  return `${stack}-${key}`;
}

/** The stack a service spec belongs to (its STACK_ENV marker, checked against the name prefix), or undefined. */
export function stackOf(spec: { name: string; env?: Record<string, string> | undefined }): string | undefined {
  const s = spec.env?.[STACK_ENV];
  return s !== undefined && spec.name.startsWith(`${s}-`) ? s : undefined;
}

/** Does this cluster network name belong to stack `stack` (name prefix `<stack>-`)? */
export function isStackNetworkName(stack: string, name: string): boolean {
  return name.startsWith(`${stack}-`);
}

function dnsName(v: string, path: string, what: string): string {
  if (!LABEL_RE.test(v)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `${path}: ${what} ${JSON.stringify(v)} is not a DNS label (lowercase [a-z0-9-], at most 63 characters, no "_" or ".")`, { field: path });
  }
  return v;
}

/** The plan for `netctl stack deploy`. Throws MESHD_BAD_ARGUMENT naming the Compose key at fault. */
export function translateStack(stack: string, file: ComposeFile): StackPlan {
  validateStackName(stack);
  const declared = new Map(file.networks.map((n) => [n.key, n]));
  const nets = new Map<string, StackNetwork>();
  const netFor = (key: string, path: string): StackNetwork => {
    let n = nets.get(key);
    if (n) return n;
    const d = declared.get(key);
    if (d?.external) {
      n = { key, name: dnsName(d.name ?? key, `networks.${key}`, 'external network name'), external: true };
    } else {
      const name = dnsName(d?.name ?? stackObjectName(stack, key), d?.name !== undefined ? `networks.${key}.name` : path, 'network name');
      n = {
        key, name, external: false, request: {
          name, driver: d?.driver ?? 'overlay', attachable: d?.attachable ?? false, ...(d?.subnet !== undefined ? { subnet: d.subnet } : {}),
          ...(d?.gateway !== undefined ? { gateway: d.gateway } : {}), ...(d?.ipRange !== undefined ? { ipRange: d.ipRange } : {}),
          ...(d?.auxAddresses !== undefined ? { auxAddresses: d.auxAddresses } : {}), ...(d?.internal ? { internal: true } : {}),
          ...(d?.labels !== undefined ? { labels: d.labels } : {}), ...(d?.options !== undefined ? { options: d.options } : {}),
          ...(d?.defaultDeny ? { defaultDeny: true } : {}),
          ...(d?.ipv6 ? { ipv6: true } : {}), ...(d?.subnet6 !== undefined ? { subnet6: d.subnet6 } : {}),
        },
      };
    }
    nets.set(key, n);
    return n;
  };
  const volumes = new Map(file.volumes.map((v) => [v.key, v]));
  const fileNames = {
    secret: new Map(file.secrets.map((o) => [o.key, stackFileName(stack, o)])),
    config: new Map(file.configs.map((o) => [o.key, stackFileName(stack, o)])),
  };
  const keys = new Set(file.services.map((s) => s.name));
  const services = file.services.map((s) => serviceSpec(stack, s, (key, path) => netFor(key, path).name, volumes, fileNames, keys));
  const files = [
    ...stackFiles('secret', stack, file.secrets, new Set(file.services.flatMap((s) => (s.secrets ?? []).map((r) => r.source)))),
    ...stackFiles('config', stack, file.configs, new Set(file.services.flatMap((s) => (s.configs ?? []).map((r) => r.source)))),
  ];
  const seen = new Map<string, string>();
  for (const n of nets.values()) {
    const other = seen.get(n.name);
    if (other !== undefined) throw new MeshError('MESHD_BAD_ARGUMENT', `networks.${n.key}: cluster name ${n.name} is also used by networks.${other}`, { field: `networks.${n.key}` });
    seen.set(n.name, n.key);
  }
  return { stack, networks: [...nets.values()], services, files, warnings: [...file.warnings] };
}

/** The service's container settings with its named volumes given their cluster names. */
function containerOf(stack: string, s: ComposeService, volumes: ReadonlyMap<string, ComposeVolume>): Record<string, unknown> | undefined {
  if (!s.container) return undefined;
  const { mounts, ...rest } = s.container;
  if (!mounts) return rest;
  return {
    ...rest,
    mounts: mounts.map(({ volume, ...m }) => (volume !== undefined ? { ...m, source: stackVolumeName(stack, volumes.get(volume)!) } : m)),
  };
}

function serviceSpec(stack: string, s: ComposeService, netName: (key: string, path: string) => string, volumes: ReadonlyMap<string, ComposeVolume>, fileNames: Readonly<Record<'secret' | 'config', ReadonlyMap<string, string>>>, keys: ReadonlySet<string>): ServiceSpec {
  const secrets = specFileRefs(s.secrets, fileNames.secret);
  const configs = specFileRefs(s.configs, fileNames.config);
  const path = `services.${s.name}`;
  const name = dnsName(stackObjectName(stack, s.name), path, 'service name');
  s.constraints.forEach((c, i) => {
    try {
      parseConstraint(c);
    } catch (e) {
      const p = `${path}.deploy.placement.constraints[${i}]`;
      throw new MeshError('MESHD_BAD_ARGUMENT', `${p}: ${e instanceof Error ? e.message : String(e)}`, { field: p });
    }
  });
  if (s.env[STACK_ENV] !== undefined && s.env[STACK_ENV] !== stack) {
    const p = `${path}.environment.${STACK_ENV}`;
    throw new MeshError('MESHD_BAD_ARGUMENT', `${p}: reserved for the stack name`, { field: p });
  }
  const raw = {
    name,
    image: s.image,
    ...(s.runtime ? { runtime: s.runtime } : {}),
    ...(s.lb ? { lb: s.lb } : {}),
    ...(s.command ? { command: s.command } : {}),
    env: { ...s.env, [STACK_ENV]: stack },
    mode: s.mode === 'global' ? { global: {} } : { replicated: { replicas: s.replicas ?? 1 } },
    endpointMode: s.endpointMode ?? 'vip',
    ports: s.ports.map((p) => ({ published: p.published, target: p.target, proto: p.proto, mode: p.mode, policy: 'cluster', ...(p.proxyProtocol ? { proxyProtocol: p.proxyProtocol } : {}) })),
    networks: s.networks.map((k, i) => ({
      target: netName(k, k === 'default' ? path : `${path}.networks[${i}]`),
      aliases: [dnsName(s.name, path, 'service key (its short name, a network alias)'),
        ...(s.aliases[k] ?? []).map((a, j) => dnsName(a, `${path}.networks.${k}.aliases[${j}]`, 'alias'))],
    })),
    ...(s.healthcheck ? { healthcheck: s.healthcheck } : {}),
    ...(s.stopGracePeriodMs !== undefined ? { stopGracePeriodMs: s.stopGracePeriodMs } : {}),
    ...(s.stopSignal !== undefined ? { stopSignal: s.stopSignal } : {}),
    constraints: s.constraints,
    preferences: s.preferences,
    ...(s.maxReplicasPerNode ? { maxReplicasPerNode: s.maxReplicasPerNode } : {}),
    ...(s.labels ? { labels: s.labels } : {}),
    ...(s.container ? { container: containerOf(stack, s, volumes) } : {}),
    ...(secrets ? { secrets } : {}),
    ...(configs ? { configs } : {}),
    restartPolicy: s.restartPolicy,
    ...(s.resources?.reservations ? { resources: s.resources.reservations } : {}),
    ...(s.resources?.limits ? { limits: s.resources.limits } : {}),
    updateConfig: s.updateConfig,
    rollbackConfig: s.rollbackConfig,
    // x-meshd-allow: a key of this file's services names that service in the stack.
    ...(s.allowFrom ? { allowFrom: s.allowFrom.map((k) => (keys.has(k) ? stackObjectName(stack, k) : k)) } : {}),
  };
  try {
    return parseServiceSpec(raw);
  } catch (e) {
    // The manager's schema names its own field (e.g. `ports.1.published`); prefix the Compose path.
    if (isMeshError(e)) throw new MeshError('MESHD_BAD_ARGUMENT', `${path}: ${e.message.replace(/^service spec /, '')}`, { field: path });
    throw e;
  }
}
