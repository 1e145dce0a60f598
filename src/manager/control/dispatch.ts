/**
 * The dispatcher's pure half: which tasks a node is told about and the Assignment each
 * becomes (src/core/assignments.ts). A task is handed to its node once scheduled
 * (`assigned`/`running`) and desired running; a task the manager wants stopped stays in
 * the list with desiredState `shutdown` until the node reports it ended, then it drops out
 * (the worker also stops tasks that vanish from the list). Desired `ready` (stop-first
 * update waiting for the old task to stop) is not handed out yet. The runtime is the task's
 * (its spec's choice, or automatic from the image: spec/runtime.ts).
 */
import { assignmentSchema, type Assignment } from '../../core/assignments.js';
import { macFromIp } from '../../core/ipam/addr.js';
import { isTerminal, replicasOf } from '../../core/spec/types.js';
import { recordWeights } from '../../core/orchestrator/canary.js';
import { resolveRuntime } from '../../core/spec/runtime.js';
import { expandHostname } from '../../core/spec/container.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from './model.js';
import { attachNetworks, taskName } from './model.js';

/** Should `nodeId` hear about this task now? */
export function dispatchable(t: TaskRecord, nodeId: string): boolean {
  if (t.nodeId !== nodeId || isTerminal(t.state)) return false;
  if (t.state !== 'assigned' && t.state !== 'running') return false;
  return t.desiredState === 'running' || t.desiredState === 'shutdown';
}

/**
 * One task's assignment. Returns undefined when something it needs is gone (service or
 * network removed, no address yet) — the task then simply is not handed out.
 */
export function assignmentFor(t: TaskRecord, svc: ServiceRecord | undefined, netsByName: ReadonlyMap<string, NetworkRecord>, nodeHostname = '', nodeZone?: string): Assignment | undefined {
  const spec = svc?.spec;
  const name = spec?.name;
  if (!svc || !spec || !name) return undefined;
  const attachments = [];
  for (const netName of attachNetworks({ ...spec, networks: t.spec.networks })) {
    const n = netsByName.get(netName);
    const ip = n ? t.addresses[n.id] : undefined;
    if (!n || !ip) return undefined;
    attachments.push({
      network: {
        id: n.id, name: n.name, vni: n.vni, subnet: n.subnet, gateway: n.gateway, ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
        ...(n.driver === 'macvlan' ? { driver: 'macvlan' as const, parent: n.options?.parent ?? '' } : {}),
        ...(n.defaultDeny ? { defaultDeny: true as const } : {}),
        ...(n.subnet6 !== undefined && n.gateway6 !== undefined ? { subnet6: n.subnet6, gateway6: n.gateway6 } : {}),
      },
      ip, prefix: Number(n.subnet.split('/')[1]), mac: macFromIp(ip),
      // Dual stack: the v6 address only when the network still has its subnet (both or neither).
      ...(n.subnet6 !== undefined && t.addresses6?.[n.id] !== undefined ? { ip6: t.addresses6[n.id], prefix6: Number(n.subnet6.split('/')[1]) } : {}),
      vip: spec.endpointMode === 'vip' ? svc.vips[n.id] ?? null : null,
      // The IPv6 VIP (issue #19 item 2 part 2) only beside an IPv4 one on a network that is still dual stack.
      ...(spec.endpointMode === 'vip' && n.subnet6 !== undefined && svc.vips6?.[n.id] !== undefined && svc.vips[n.id] !== undefined ? { vip6: svc.vips6[n.id] } : {}),
      // The task's own spec (not the service's): during a rolling update old tasks keep their names.
      aliases: t.spec.networkAliases?.[netName] ?? [],
    });
  }
  const ports = t.spec.ports.map((p) => ({
    proto: p.proto, target: p.target, ...(p.published > 0 ? { published: p.published } : {}), mode: p.mode, policy: p.policy,
    ...(p.proxyProtocol ? { proxyProtocol: p.proxyProtocol } : {}),
  }));
  const runtime = resolveRuntime(t.spec);
  const c = t.spec.container;
  // netns has no image: an entrypoint is simply the start of the command line.
  const argv = runtime === 'netns' && c?.entrypoint ? [...c.entrypoint, ...(t.spec.command ?? [])] : t.spec.command ?? [];
  const container = c ? {
    ...c,
    ...(c.hostname !== undefined ? {
      hostname: expandHostname(c.hostname, {
        serviceName: name, serviceId: svc.id, taskId: t.id, taskName: taskName(name, t), slot: t.slot, nodeHostname: nodeHostname || (t.nodeId ?? ''), nodeId: t.nodeId ?? '',
      }),
    } : {}),
  } : undefined;
  return assignmentSchema.parse({
    task: {
      id: t.id, name: taskName(name, t), serviceId: svc.id, serviceName: name,
      ...(t.slot !== undefined ? { slot: t.slot } : {}),
      // The task's own spec: a task keeps the runtime it was scheduled for (the node has it).
      image: t.spec.image, argv, env: t.spec.env, runtime,
      ...(t.spec.healthcheck !== undefined ? { healthcheck: t.spec.healthcheck } : {}),
      ...(t.spec.stopGracePeriodMs !== undefined ? { stopGraceMs: t.spec.stopGracePeriodMs } : {}),
      ...(t.spec.stopSignal !== undefined ? { stopSignal: t.spec.stopSignal } : {}),
      ...(t.spec.limits ? { limits: t.spec.limits } : {}),
      ...(container ? { container } : {}),
      // References only: the payloads are fetched per task over mTLS (file-routes.ts), never kept in assignments.
      ...(t.spec.secrets?.length ? { secrets: t.spec.secrets } : {}),
      ...(t.spec.configs?.length ? { configs: t.spec.configs } : {}),
    },
    desiredState: t.desiredState === 'shutdown' ? 'shutdown' : 'running',
    endpointMode: spec.endpointMode,
    ...lbOf(spec.lb, canaryWeightOf(t, svc)),
    ...(nodeZone ? { zone: nodeZone } : {}),
    attachments,
    ports,
    // The service's current policy (not the task's spec): an allow-from edit never replaces tasks.
    ...(spec.allowFrom !== undefined ? { allowFrom: spec.allowFrom } : {}),
  });
}

/**
 * A task's LB weight while its service runs a canary (core/orchestrator/canary.ts): tasks of the
 * current spec version are the canary, the others the old ones (`replicas` of them, never replaced
 * while the canary is held). Undefined otherwise (all tasks equal).
 */
function canaryWeightOf(t: TaskRecord, svc: ServiceRecord): number | undefined {
  if (!svc.canary) return undefined;
  // Derived every time from the stored share (never stored itself): a resumed canary gets the same numbers.
  const w = recordWeights(replicasOf(svc.spec), svc.canary);
  return t.specVersion === svc.version ? w.canary : w.old;
}

/** The assignment's `lb`: only the non-default choices, absent when there is none (older agents stay compatible). */
function lbOf(lb: ServiceRecord['spec']['lb'], weight?: number): { lb?: { algorithm?: 'round-robin' | 'source-hash'; locality?: 'node' | 'zone'; weight?: number } } {
  const out: { algorithm?: 'round-robin' | 'source-hash'; locality?: 'node' | 'zone'; weight?: number } = {};
  if (lb?.algorithm && lb.algorithm !== 'random') out.algorithm = lb.algorithm;
  if (lb?.locality && lb.locality !== 'none') out.locality = lb.locality;
  if (weight !== undefined) out.weight = weight;
  return Object.keys(out).length ? { lb: out } : {};
}

/** The whole list for one node, in task-id order (stable for the worker's diff). `nodeZone`: the node's `node.labels.zone`. */
export function assignmentsFor(nodeId: string, tasks: readonly TaskRecord[], services: ReadonlyMap<string, ServiceRecord>, netsByName: ReadonlyMap<string, NetworkRecord>, nodeHostname = '', nodeZone?: string): Assignment[] {
  const out: Assignment[] = [];
  for (const t of [...tasks].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    if (!dispatchable(t, nodeId)) continue;
    const a = assignmentFor(t, services.get(t.serviceId), netsByName, nodeHostname, nodeZone);
    if (a) out.push(a);
  }
  return out;
}
