/**
 * Pure helpers of the worker: validation of an assignment list as a whole (the schema
 * checks one assignment; this checks that the list is consistent), the endpoint records a
 * task publishes, and the runtime spec it starts with. Everything here throws MeshError
 * MESHD_BAD_ARGUMENT on bad input, so the API answers 400 and nothing is half-applied.
 */
import { assignmentSchema, type Assignment, type Attachment } from '../../core/assignments.js';
import type { EndpointRecord } from '../../core/endpoints.js';
import { MeshError } from '../../core/errors.js';
import { cidrContains, lastOf, parseCidr, parseIp } from '../../core/ipam/addr.js';
import { cidr6Contains, formatIp6, parseCidr6, parseIp6 } from '../../core/ipam/addr6.js';
import { validateNetwork } from '../../core/overlay/desired.js';
import type { OverlayNetwork } from '../../core/overlay/model.js';

import { SHORT_ID_LEN } from '../../core/worker/converge.js';

export { SHORT_ID_LEN };

/** Accepts `[...]` or `{ assignments: [...] }`; validates every item and the list as a whole. */
export function validateAssignments(body: unknown): Assignment[] {
  const raw = Array.isArray(body) ? body : (body as { assignments?: unknown } | null)?.assignments;
  if (!Array.isArray(raw)) throw new MeshError('MESHD_BAD_ARGUMENT', 'body must be a JSON array of assignments or {"assignments": [...]}');
  if (raw.length > 10_000) throw new MeshError('MESHD_BAD_ARGUMENT', `too many assignments (${raw.length} > 10000)`);
  const list: Assignment[] = raw.map((item, i) => {
    const r = assignmentSchema.safeParse(item);
    if (!r.success) {
      const first = r.error.issues[0]!;
      throw new MeshError('MESHD_BAD_ARGUMENT', `assignments[${i}].${first.path.join('.') || '(root)'}: ${first.message}`, {
        index: i, issues: r.error.issues.slice(0, 10).map((x) => ({ path: x.path.join('.'), message: x.message })),
      });
    }
    return r.data;
  });
  checkList(list);
  return list;
}

function bad(msg: string): never {
  throw new MeshError('MESHD_BAD_ARGUMENT', msg);
}

function checkList(list: readonly Assignment[]): void {
  const ids = new Set<string>();
  const shorts = new Map<string, string>();
  const nets = new Map<string, string>();
  const vnis = new Map<number, string>();
  const ips = new Map<string, string>();
  const macs = new Map<string, string>();
  for (const a of list) {
    const id = a.task.id;
    if (ids.has(id)) bad(`task ${id} is assigned twice`);
    ids.add(id);
    const short = id.slice(0, SHORT_ID_LEN);
    if (shorts.has(short)) bad(`tasks ${shorts.get(short)} and ${id} share their first ${SHORT_ID_LEN} characters (namespace names would collide)`);
    shorts.set(short, id);
    const seenNet = new Set<string>();
    for (const att of a.attachments) {
      const n = att.network;
      if (seenNet.has(n.id)) bad(`task ${id} is attached twice to network ${n.id}`);
      seenNet.add(n.id);
      const def = JSON.stringify(n);
      if (nets.has(n.id) && nets.get(n.id) !== def) bad(`network ${n.id} is defined differently by two assignments`);
      nets.set(n.id, def);
      if (vnis.has(n.vni) && vnis.get(n.vni) !== n.id) bad(`networks ${vnis.get(n.vni)} and ${n.id} share VNI ${n.vni}`);
      vnis.set(n.vni, n.id);
      validateNetwork(n); // subnet syntax (host bits), gateway inside, VNI range
      const subnet = parseCidr(n.subnet);
      if (att.prefix !== subnet.prefix) bad(`task ${id}: prefix /${att.prefix} differs from network ${n.id}'s ${n.subnet}`);
      const ip = parseIp(att.ip);
      if (!cidrContains(subnet, ip)) bad(`task ${id}: address ${att.ip} is outside ${n.subnet}`);
      if (ip === subnet.base || ip === lastOf(subnet)) bad(`task ${id}: address ${att.ip} is the network or broadcast address of ${n.subnet}`);
      if (att.ip === n.gateway) bad(`task ${id}: address ${att.ip} is network ${n.id}'s gateway`);
      if (att.ip6 !== undefined) checkIp6(id, att);
      if (a.desiredState === 'running') {
        const ipKey = `${n.id}/${att.ip}`;
        if (ips.has(ipKey)) bad(`tasks ${ips.get(ipKey)} and ${id} both have ${att.ip} on network ${n.id}`);
        ips.set(ipKey, id);
        const macKey = `${n.id}/${att.mac}`;
        if (macs.has(macKey)) bad(`tasks ${macs.get(macKey)} and ${id} both have MAC ${att.mac} on network ${n.id}`);
        macs.set(macKey, id);
      }
    }
  }
}

/** A dual-stack attachment's IPv6 address: canonical, inside the network's subnet6, not anycast or gateway. */
function checkIp6(id: string, att: Attachment): void {
  const n = att.network;
  let c: ReturnType<typeof parseCidr6>;
  let ip: bigint;
  try {
    c = parseCidr6(n.subnet6 ?? '');
    ip = parseIp6(att.ip6 ?? '');
  } catch (e) {
    return bad(`task ${id}: ${(e as Error).message}`);
  }
  if (formatIp6(ip) !== att.ip6) bad(`task ${id}: IPv6 address ${att.ip6} is not in canonical form (${formatIp6(ip)})`);
  if (att.prefix6 !== c.prefix) bad(`task ${id}: prefix /${att.prefix6} differs from network ${n.id}'s ${n.subnet6}`);
  if (!cidr6Contains(c, ip)) bad(`task ${id}: IPv6 address ${att.ip6} is outside ${n.subnet6}`);
  if (ip === c.base || att.ip6 === n.gateway6) bad(`task ${id}: IPv6 address ${att.ip6} is network ${n.id}'s anycast or gateway address`);
}

export function overlayNetworkOf(att: Attachment): OverlayNetwork {
  const n = att.network;
  return {
    id: n.id, name: n.name, vni: n.vni, subnet: n.subnet, gateway: n.gateway, ...(n.mtu !== undefined ? { mtu: n.mtu } : {}),
    ...(n.subnet6 !== undefined ? { subnet6: n.subnet6 } : {}),
  };
}

/** The record a node publishes for one attachment of a task it runs. */
/**
 * `exposed`: ports the image declares (TaskInfo.exposed); each one the spec does not already
 * name as a target is added VIP-only (no published port), so the VIP forwards it.
 */
export function endpointRecord(a: Assignment, att: Attachment, node: string, nodeIp: string, state: EndpointRecord['state'], exposed: ReadonlyArray<{ proto: 'tcp' | 'udp'; port: number }> = []): EndpointRecord {
  const named = new Set(a.ports.map((p) => `${p.proto}/${p.target}`));
  const extra = exposed.filter((e) => !named.has(`${e.proto}/${e.port}`)).slice(0, Math.max(0, 64 - a.ports.length)).map((e) => ({ proto: e.proto, target: e.port }));
  return {
    v: 1,
    taskId: a.task.id,
    taskName: a.task.name,
    serviceId: a.task.serviceId,
    serviceName: a.task.serviceName,
    network: att.network.id,
    networkName: att.network.name,
    ip: att.ip,
    ...(att.ip6 !== undefined ? { ip6: att.ip6 } : {}),
    mac: att.mac,
    node,
    nodeIp,
    vip: att.vip,
    ...(att.vip6 !== undefined && att.network.driver !== 'macvlan' ? { vip6: att.vip6 } : {}),
    // macvlan networks carry no VIP (the manager allocates none): names resolve to task addresses.
    endpointMode: att.network.driver === 'macvlan' ? 'dnsrr' : a.endpointMode,
    aliases: att.aliases,
    ports: extra.length ? [...a.ports, ...extra] : a.ports,
    state,
    ...(a.lb ? { lb: a.lb } : {}),
    ...(a.zone ? { zone: a.zone } : {}),
  };
}

/** Runtime program of a task: the built-in whoami for image 'whoami', else its argv. */
export function programOf(a: Assignment): { builtin: 'whoami' } | { argv: string[] } {
  if (a.task.image === 'whoami' && a.task.argv.length === 0) return { builtin: 'whoami' };
  if (a.task.runtime === 'netns' && a.task.argv.length === 0) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `task ${a.task.id}: the netns runtime needs argv (or image "whoami")`);
  }
  return { argv: a.task.argv };
}

/** Two assignments describe the same running task (a changed spec is not applied to a running task). */
export function sameTask(x: Assignment, y: Assignment): boolean {
  return x.task.id === y.task.id;
}
