/**
 * Pure part of the agent's load balancer: turns the `endpoints` gossip tables into the LB
 * desired state of each namespace, and renders the host namespace's small ingress NAT table.
 *
 * Identity matters: the dataplane's syncer memoizes compiled frontends by object identity, so
 * `LbModel` keeps one VipService / IngressPublish[] per service and replaces it only when a
 * record of that service changes. Everything else handed to the dataplane is the very same
 * object as last time, and planning an endpoint change costs O(that service).
 *
 * Robustness: records arrive from the network. One bad service must not stop a namespace from
 * being programmed, so duplicate addresses are dropped (active wins) and VIP / published-port
 * conflicts between services are resolved first-come (by service id) and reported.
 */
import type { Backend, IngressPublish, LbOptions, Proto, VipService } from '../../core/lb/model.js';
import { INGRESS_NETWORK, type EndpointRecord } from '../../core/endpoints.js';
import { MeshError } from '../../core/errors.js';
import { cidrContains, lastOf, macFromIp, parseCidr, parseIp } from '../../core/ipam/addr.js';

/** The fixed routing-mesh overlay network every node joins (Docker's `ingress`). */
export const INGRESS_NET = { id: INGRESS_NETWORK, name: 'ingress', vni: 4096, subnet: '10.255.0.0/16', gateway: '10.255.0.1' } as const;
export const INGRESS_PREFIX_LEN = 16;
/** Service id of the per-node ingress sandbox records on network `ingress` (not a service: ignored by the LB). */
export const SBOX_SERVICE = 'ingress-sbox';
/** Host ↔ ingress-sandbox point-to-point link (/30, the same on every node: it never leaves the node). */
export const HOST_LINK = { hostIf: 'meshd-ing0', sboxIf: 'ehost', hostIp: '172.31.255.1', sboxIp: '172.31.255.2', prefix: 30 } as const;
export const HOST_NFT_TABLE = 'meshd-ingress';

/**
 * IPv6 published ports (issue 19 §2): when this node's underlay has IPv6, the routing mesh is dual
 * stack. The ingress network's IPv6 addresses are NOT allocated: each is derived from the node's or
 * task's IPv4 ingress address (`ingress6Of`: the reserved ULA /64 below + the 32 IPv4 bits), so
 * they are as unique as the IPv4 ones, need no IPAM, no manager change and no new record field
 * beyond `ip6`. Reserved ULA /64s (never routed off a node / off the ingress overlay):
 * - `fd6d:6573:6864:ff00::/64` ingress network (e.g. 10.255.0.5 → fd6d:6573:6864:ff00::aff:5);
 * - `fd6d:6573:6864:fffe::/64` host ↔ ingress-sandbox link (`::1` host, `::2` sandbox).
 */
export const INGRESS_NET6 = { subnet: 'fd6d:6573:6864:ff00::/64', prefix: 64, base: 'fd6d:6573:6864:ff00::' } as const;
export const HOST_LINK6 = { hostIp: 'fd6d:6573:6864:fffe::1', sboxIp: 'fd6d:6573:6864:fffe::2', prefix: 64 } as const;

/** The IPv6 ingress address of an IPv4 ingress address (see INGRESS_NET6). */
export function ingress6Of(ip4: string): string {
  const n = parseIp(ip4);
  const hi = (n >>> 16) & 0xffff;
  const lo = n & 0xffff;
  return hi === 0 ? `${INGRESS_NET6.base}${lo.toString(16)}` : `${INGRESS_NET6.base}${hi.toString(16)}:${lo.toString(16)}`;
}

function backendOf(r: EndpointRecord, node: string, zone: string | undefined): Backend {
  return {
    id: r.taskId, ip: r.ip, ...(r.ip6 !== undefined ? { ip6: r.ip6 } : {}), state: r.state === 'running' ? 'active' : 'draining', ...(r.node === node ? { local: true } : {}),
    ...(zone !== undefined && r.zone === zone ? { sameZone: true } : {}),
    ...(r.lb?.weight !== undefined ? { weight: r.lb.weight } : {}),
  };
}

/**
 * This node's zone as the records know it: the `zone` of a record of this node. Records carry
 * their node's `node.labels.zone` (the manager puts it in the assignments), and the agent has no
 * other view of its labels; a node with no task of the service therefore prefers no zone (its
 * locality falls back to "any active task").
 */
function zoneOf(records: readonly EndpointRecord[], node: string): string | undefined {
  for (const r of records) if (r.node === node && r.zone !== undefined) return r.zone;
  return undefined;
}

/** The LbOptions of a service from its records (the lead record's; absent = defaults). */
function lbOf(r: EndpointRecord): { lb?: LbOptions } {
  const lb: LbOptions = {};
  if (r.lb?.algorithm) lb.algorithm = r.lb.algorithm;
  if (r.lb?.locality) lb.locality = r.lb.locality;
  return lb.algorithm || lb.locality ? { lb } : {};
}

/**
 * Backends of a set of records, one per address (an active record wins over a draining one).
 * A `starting` record (health check not passed yet) is no backend at all.
 */
export function backendsOf(records: readonly EndpointRecord[], node: string): Backend[] {
  const byIp = new Map<string, Backend>();
  const zone = zoneOf(records, node);
  for (const r of [...records].sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0))) {
    if (r.state === 'starting') continue;
    const prev = byIp.get(r.ip);
    if (prev && (prev.state === 'active' || r.state !== 'running')) continue;
    byIp.set(r.ip, backendOf(r, node, zone));
  }
  return [...byIp.values()];
}

/**
 * The VipService of one service on one network, or null (dnsrr, no VIP, no port). VIP port =
 * target port (as in Docker). The VIP is taken from a running record when there is one.
 */
export function vipServiceOf(records: readonly EndpointRecord[], node: string): VipService | null {
  if (records.length === 0) return null;
  const lead = records.find((r) => r.state === 'running') ?? records[0]!;
  if (lead.endpointMode !== 'vip' || !lead.vip) return null;
  const ports = new Map<string, { proto: Proto; port: number; targetPort: number }>();
  for (const r of records) for (const p of r.ports) ports.set(`${p.proto}/${p.target}`, { proto: p.proto, port: p.target, targetPort: p.target });
  if (ports.size === 0) return null;
  return { id: lead.serviceId, name: lead.serviceName, vip: lead.vip, ...(lead.vip6 !== undefined ? { vip6: lead.vip6 } : {}), ports: [...ports.values()], backends: backendsOf(records, node), ...lbOf(lead) };
}

/**
 * Ingress publishes of one service from its records on network `ingress` (backend address =
 * the task's ingress address). `policy: local` balances over this node's tasks only and does not
 * masquerade (the task sees the client's address); the task's replies come back through this
 * node's ingress sandbox by source-based routing set up at attachment (see lb-ingress.ts).
 */
export function ingressOf(records: readonly EndpointRecord[], node: string): IngressPublish[] {
  if (records.length === 0) return [];
  const seen = new Map<string, IngressPublish>();
  const backends = backendsOf(records, node);
  const lead = records.find((r) => r.state === 'running') ?? records[0]!;
  for (const r of records) {
    for (const p of r.ports) {
      if (p.published === undefined || (p.mode ?? 'ingress') !== 'ingress') continue;
      const k = `${p.proto}/${p.published}`;
      if (seen.has(k)) continue;
      seen.set(k, { service: r.serviceId, publishedPort: p.published, proto: p.proto, targetPort: p.target, policy: p.policy ?? 'cluster', ...(p.proxyProtocol ? { proxyProtocol: p.proxyProtocol } : {}), backends, ...lbOf(lead) });
    }
  }
  return [...seen.values()];
}

/**
 * Keeps the first service per VIP:proto:port (inputs are in service-id order), services with
 * tasks before remembered empty ones (a VIP reused by a new service wins over the old one);
 * returns the dropped ids.
 */
export function dropVipConflicts(services: readonly VipService[]): { services: VipService[]; conflicts: string[] } {
  const used = new Set<string>();
  const out: VipService[] = [];
  const conflicts: string[] = [];
  const ordered = [...services.filter((s) => s.backends.length > 0), ...services.filter((s) => s.backends.length === 0)];
  for (const s of ordered) {
    const keys = vipClaims(s);
    if (keys.some((k) => used.has(k))) {
      conflicts.push(s.id);
      continue;
    }
    for (const k of keys) used.add(k);
    out.push(s);
  }
  return { services: out, conflicts };
}

/** The `VIP proto port` keys a service claims: IPv4 and, on a dual-stack network, IPv6. */
export function vipClaims(s: VipService): string[] {
  if (!s.vip) return [];
  const k = s.ports.map((p) => `${s.vip} ${p.proto} ${p.port}`);
  return s.vip6 ? [...k, ...s.ports.map((p) => `${s.vip6} ${p.proto} ${p.port}`)] : k;
}

const samePorts = (a: VipService['ports'], b: VipService['ports']): boolean =>
  a === b || (a.length === b.length && a.every((p, i) => p.proto === b[i]!.proto && p.port === b[i]!.port));

/**
 * dropVipConflicts for one namespace, remembering its last input: when the last result had no conflict and
 * every service that changed kept its VIP, its ports and whether it has backends (an endpoint change, the
 * common case), no conflict can have appeared, and the winners are the input in the same order — found with
 * pointer compares instead of a key string per service port (issue 18 §4: that was a third of the CPU of one
 * endpoint change at 5,000 services). Anything else recomputes.
 */
export class VipConflictMemo {
  private lastIn: readonly VipService[] | null = null;
  private lastClean = false;

  run(services: readonly VipService[]): { services: VipService[]; conflicts: string[] } {
    const prev = this.lastIn;
    this.lastIn = services;
    if (prev && this.lastClean && prev.length === services.length) {
      let same = true;
      for (let i = 0; i < services.length && same; i++) {
        const a = prev[i]!;
        const b = services[i]!;
        if (a !== b) same = a.vip === b.vip && a.vip6 === b.vip6 && a.backends.length > 0 === b.backends.length > 0 && samePorts(a.ports, b.ports);
      }
      if (same) return { services: [...services.filter((s) => s.backends.length > 0), ...services.filter((s) => s.backends.length === 0)], conflicts: [] };
    }
    const r = dropVipConflicts(services);
    this.lastClean = r.conflicts.length === 0;
    return r;
  }
}

export function dropIngressConflicts(pubs: readonly IngressPublish[]): { ingress: IngressPublish[]; conflicts: string[] } {
  const used = new Set<string>();
  const out: IngressPublish[] = [];
  const conflicts: string[] = [];
  for (const g of pubs) {
    const k = `${g.proto}/${g.publishedPort}`;
    if (used.has(k)) {
      conflicts.push(`${g.service} ${k}`);
      continue;
    }
    used.add(k);
    out.push(g);
  }
  return { ingress: out, conflicts };
}

/**
 * The host namespace's ingress table: traffic to this node's underlay address on a published
 * port is DNATed to the ingress sandbox (which balances and masquerades). Replaced atomically
 * as a whole (`add; delete; add` in one `nft -f`): it holds one element per published port.
 * With no port published the table stays (empty), so a stale rule can never survive.
 *
 * `underlay6`: this node's IPv6 underlay addresses (IPv6 or dual underlay; empty on IPv4). Then an
 * `ip6` table of the same name DNATs them to the sandbox's HOST_LINK6 address, in the SAME
 * transaction; an IPv4 `underlayIp` that is an IPv6 address (IPv6-only underlay) gives an `ip`
 * table with the set and no DNAT rule (the `ip` family cannot name an IPv6 address). With no
 * IPv6 address the output is byte-identical to what it was before IPv6 published ports.
 */
export function renderHostIngress(underlayIp: string, ports: ReadonlyArray<{ proto: Proto; port: number }>, underlay6: readonly string[] = [], dropStale6 = false): string {
  const elems = [...new Set(ports.map((p) => `${p.proto} . ${p.port}`))].sort();
  const set = elems.length ? `\t\telements = { ${elems.join(', ')} }\n` : '';
  const v4 = hostTable('ip', set, underlayIp.includes(':') ? [] : [underlayIp], HOST_LINK.sboxIp);
  const six = [...new Set(underlay6)].sort();
  // `dropStale6`: the node had IPv6 underlay addresses and lost them all: its ip6 table goes in the same transaction.
  const gone6 = !six.length && dropStale6 ? [`add table ip6 ${HOST_NFT_TABLE}`, `delete table ip6 ${HOST_NFT_TABLE}`] : [];
  return [...v4, ...(six.length ? hostTable('ip6', set, six, HOST_LINK6.sboxIp) : gone6), ''].join('\n');
}

/**
 * The families (`ip`, `ip6`) holding a HOST_NFT_TABLE in `nft list tables` output (`table FAMILY NAME`
 * lines; other tables and anything else ignored). What the kernel has, for an agent that does not know
 * what it programmed before it started (ingress-side.ts programHost).
 */
export function hostTableFamilies(listing: string): Set<string> {
  const out = new Set<string>();
  for (const line of listing.split('\n')) {
    const m = /^table (\S+) (\S+)$/.exec(line.trim());
    if (m && m[2] === HOST_NFT_TABLE) out.add(m[1]!);
  }
  return out;
}

/**
 * One family's host table, as lines: the `published` set (`set`: its rendered elements line or
 * '') and, when `daddrs` is not empty, the DNAT of those addresses on a published port to the
 * sandbox's address `to`, in prerouting (from the underlay) and output (from the node itself).
 */
function hostTable(family: 'ip' | 'ip6', set: string, daddrs: readonly string[], to: string): string[] {
  const d = daddrs.length === 1 ? daddrs[0]! : `{ ${daddrs.join(', ')} }`;
  const rule = daddrs.length ? `\n\t\t${family} daddr ${d} meta l4proto . th dport @published dnat ${family === 'ip6' ? 'ip6 ' : ''}to ${to}` : '';
  return [
    `add table ${family} ${HOST_NFT_TABLE}`,
    `delete table ${family} ${HOST_NFT_TABLE}`,
    `table ${family} ${HOST_NFT_TABLE} {`,
    `\tset published {\n\t\ttype inet_proto . inet_service\n${set}\t}`,
    `\tchain pre {\n\t\ttype nat hook prerouting priority -100; policy accept;${rule}\n\t}`,
    `\tchain out {\n\t\ttype nat hook output priority -100; policy accept;${rule}\n\t}`,
    '}',
  ];
}

/** Routing table (in task namespaces) for replies from a task's ingress address. */
export const INGRESS_REPLY_TABLE = 4096;

/** Network namespace of a local task under the netns runtime. */
export function taskNetnsName(prefix: string, taskId: string): string {
  return `${prefix}t-${taskId.slice(0, 12)}`;
}

/** The node's ingress sandbox namespace (holds the LB for published ports). */
export function ingressSboxName(prefix: string): string {
  return `${prefix}ingress`;
}

/** Overlay-sandbox side of a task's ingress veth (≤ 15 chars). */
export function ingressVethName(taskId: string): string {
  return `vi-${taskId.slice(0, 12)}`;
}

/** An ingress address (node sandbox or task attachment): an ingress host address other than the gateway. */
export function parseIngressAddr(body: unknown): { ip: string; mac: string } {
  const b = (body ?? {}) as { ip?: unknown; mac?: unknown };
  if (typeof b.ip !== 'string') throw new MeshError('MESHD_BAD_ARGUMENT', `ip must be an IPv4 address in ${INGRESS_NET.subnet}`);
  const net = parseCidr(INGRESS_NET.subnet);
  let ip: number;
  try {
    ip = parseIp(b.ip);
  } catch {
    throw new MeshError('MESHD_BAD_ARGUMENT', `ip: not an IPv4 address: ${JSON.stringify(b.ip)}`);
  }
  if (!cidrContains(net, ip) || ip === net.base || ip === lastOf(net) || b.ip === INGRESS_NET.gateway) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `ip ${b.ip} must be a host address of ${INGRESS_NET.subnet} other than the gateway ${INGRESS_NET.gateway}`);
  }
  if (b.mac !== undefined && (typeof b.mac !== 'string' || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(b.mac))) throw new MeshError('MESHD_BAD_ARGUMENT', 'mac must look like 02:42:0a:ff:00:05');
  return { ip: b.ip, mac: (b.mac as string | undefined) ?? macFromIp(b.ip) };
}

/**
 * The record of a node's ingress sandbox on `ingress` (key = taskId `sbox-<node>`): peers program
 * FDB/neighbour entries for it, so replies to its masqueraded connections find their way back
 * (`v6`: with its IPv6 ingress address, so peers' VXLAN proxies answer ND for it too).
 */
export function sboxRecord(node: string, nodeIp: string, addr: { ip: string; mac: string }, v6 = false): EndpointRecord {
  return {
    v: 1, taskId: `sbox-${node}`.slice(0, 64), taskName: `ingress-sbox.${node}`.slice(0, 128), serviceId: SBOX_SERVICE, serviceName: SBOX_SERVICE,
    network: INGRESS_NETWORK, networkName: INGRESS_NET.name, ip: addr.ip, ...(v6 ? { ip6: ingress6Of(addr.ip) } : {}), mac: addr.mac, node, nodeIp,
    vip: null, endpointMode: 'dnsrr', aliases: [], ports: [], state: 'running',
  };
}

/** Host publish mode: the host-side veth of a task (≤ 15 chars) and its peer in the task's namespace. */
export function hostVethName(taskId: string): string {
  return `vh-${taskId.slice(0, 12)}`;
}
export const HOST_MODE = {
  taskIf: 'mhost0',
  /** On every host-side veth (a /32, link-local): the task's gateway for host-mode replies. */
  hostIp: '169.254.255.1',
  /** Connection mark (task namespace) of connections that came in over `taskIf`. */
  ctMark: 0x4d48,
  /** Routing table (task namespace) for their replies: default via `hostIp` on `taskIf`. */
  replyTable: 4097,
  nftTable: 'meshd-hostmode',
} as const;

/**
 * Host-mode publishes (`--publish mode=host`) of THIS node from its local task records: per
 * service and proto/published port, the node's own tasks (each by its address on its first
 * network, in network-id order — the host routes that /32 to the task's host veth). Ports of other
 * modes are ignored; nothing is returned for a port no local task publishes, so the port stays
 * closed on nodes without a task. Not on `ingress` (host mode has no ingress involvement).
 */
export function hostPublishesOf(records: readonly EndpointRecord[], node: string): IngressPublish[] {
  const byTask = new Map<string, EndpointRecord>();
  for (const r of records) {
    if (r.node !== node || r.network === INGRESS_NETWORK) continue;
    const prev = byTask.get(r.taskId);
    if (!prev || r.network < prev.network) byTask.set(r.taskId, r);
  }
  const pubs = new Map<string, { g: Omit<IngressPublish, 'backends'>; recs: EndpointRecord[] }>();
  for (const r of [...byTask.values()].sort((a, b) => (a.taskId < b.taskId ? -1 : a.taskId > b.taskId ? 1 : 0))) {
    for (const p of r.ports) {
      if (p.mode !== 'host' || p.published === undefined) continue;
      const k = `${p.proto}/${p.published}`;
      const cur = pubs.get(k) ?? { g: { service: r.serviceId, publishedPort: p.published, proto: p.proto, targetPort: p.target, policy: 'local', mode: 'host' }, recs: [] };
      if (cur.g.service !== r.serviceId) continue; // the scheduler keeps host ports unique per node; first service wins
      if (!cur.recs.some((x) => x.taskId === r.taskId)) cur.recs.push(r);
      pubs.set(k, cur);
    }
  }
  return [...pubs.keys()].sort().map((k) => {
    const { g, recs } = pubs.get(k)!;
    return { ...g, backends: backendsOf(recs, node) };
  });
}
