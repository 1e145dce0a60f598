/**
 * Lab naming and addressing: pure functions, so tests and teardown agree on every name.
 *
 * A lab L is: a switch namespace `mlab-L-sw` with bridge `br0`; host namespaces
 * `mlab-L-nI` (node `nI`), each with `eth0` (veth to the switch, port `nI`) on the
 * underlay 10.99.0.0/16; a client namespace `mlab-L-client` (a user's laptop on the
 * underlay, outside the cluster). Every lab uses the same underlay subnet: labs are
 * isolated from each other and from the root namespace, which gets no address or route.
 * Anything an agent creates in a lab (sandboxes, task namespaces) is named with the
 * node's prefix `mlab-L-nI-`, so `lab down` finds it by prefix even after a crash.
 */
import { existsSync } from 'node:fs';
import { MeshError } from '../core/errors.js';
import { formatHostPort } from '../core/hostport.js';

export const LAB_NS_PREFIX = 'mlab-';
export const LAB_NAME_RE = /^[a-z][a-z0-9]{0,11}$/;
export const MAX_LAB_NODES = 250;
export const UNDERLAY_PREFIX_LEN = 16;
export const GOSSIP_PORT = 7946;

export function validateLabName(name: string): string {
  if (!LAB_NAME_RE.test(name)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid lab name ${JSON.stringify(name)}: 1-12 chars [a-z0-9], starting with a letter`);
  }
  return name;
}

export function parseNodeCount(raw: string | number): number {
  const s = String(raw).trim();
  if (!/^\d+$/.test(s)) throw new MeshError('MESHD_BAD_ARGUMENT', `--nodes must be a whole number from 1 to ${MAX_LAB_NODES}, got ${JSON.stringify(String(raw))}`);
  const n = Number(s);
  if (n < 1 || n > MAX_LAB_NODES) throw new MeshError('MESHD_BAD_ARGUMENT', `--nodes must be from 1 to ${MAX_LAB_NODES}, got ${n}`);
  return n;
}

export const nodeName = (i: number): string => `n${i}`;
export const switchNs = (lab: string): string => `${LAB_NS_PREFIX}${lab}-sw`;
export const clientNs = (lab: string): string => `${LAB_NS_PREFIX}${lab}-client`;
export const hostNs = (lab: string, node: string): string => `${LAB_NS_PREFIX}${lab}-${node}`;
/** Prefix for namespaces an agent creates on node `node` of lab `lab`. */
export const nodeObjectPrefix = (lab: string, node: string): string => `${LAB_NS_PREFIX}${lab}-${node}-`;
/** Underlay address of node i (1-based): 10.99.1.i for i ≤ 250. */
export const nodeAddr = (i: number): string => `10.99.${1 + Math.floor((i - 1) / 250)}.${((i - 1) % 250) + 1}`;
export const CLIENT_ADDR = '10.99.0.2';
/**
 * Underlay MAC of node i (1-based; 0 = the client): fixed, locally administered, so every host can hold a
 * permanent neighbour entry for every other host (see renderHost for why).
 */
export const nodeMac = (i: number): string => `02:99:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
export const CLIENT_MAC = nodeMac(0);
export const labRunDir = (lab: string): string => `/run/meshd/${lab}`;
export const nodeSocket = (lab: string, node: string): string => `${labRunDir(lab)}/${node}.sock`;

/** Which lab (if any) a namespace belongs to. */
export function labOfNamespace(ns: string): string | undefined {
  if (!ns.startsWith(LAB_NS_PREFIX)) return undefined;
  const m = /^mlab-([a-z][a-z0-9]{0,11})-/.exec(ns);
  return m?.[1];
}

export interface LabNodePlan {
  name: string;
  index: number;
  netns: string;
  underlay: string;
  /** MAC of the host's eth0 (nodeMac(index)). */
  mac: string;
  socket: string;
  /** Seeds this node joins through: up to 3 lower-numbered nodes (n1 seeds nobody). */
  seeds: string[];
}

export function planLab(lab: string, nodes: number, underlay: LabUnderlay = 'ipv4'): LabNodePlan[] {
  validateLabName(lab);
  parseNodeCount(nodes);
  checkLabUnderlay(underlay);
  const out: LabNodePlan[] = [];
  for (let i = 1; i <= nodes; i++) {
    const name = nodeName(i);
    const seeds: string[] = [];
    for (let j = 1; j < i && seeds.length < 3; j++) seeds.push(formatHostPort(advertisedAddr(underlay, j), GOSSIP_PORT));
    out.push({ name, index: i, netns: hostNs(lab, name), underlay: advertisedAddr(underlay, i), mac: nodeMac(i), socket: nodeSocket(lab, name), seeds });
  }
  return out;
}

/**
 * The lab underlay's address families (issue 19 §2): `ipv4` (default, 10.99.0.0/16 as always),
 * `ipv6` (an IPv6-only underlay: hosts get only fd99:6c61:6200::/64 addresses, agents advertise them,
 * gossip and VXLAN run over IPv6), `dual` (both addresses on every host; agents advertise IPv4).
 */
export type LabUnderlay = 'ipv4' | 'ipv6' | 'dual';
export const LAB_UNDERLAYS: readonly LabUnderlay[] = ['ipv4', 'ipv6', 'dual'];
export const UNDERLAY6_PREFIX_LEN = 64;
/** IPv6 underlay address of node i (1-based): fd99:6c61:6200::<i in hex>. */
export const nodeAddr6 = (i: number): string => `fd99:6c61:6200::${i.toString(16)}`;
/** The lab client's IPv6 underlay address (outside the nodes' range, which ends at ::fa). */
export const CLIENT_ADDR6 = 'fd99:6c61:6200::1:2';

export function checkLabUnderlay(u: string): LabUnderlay {
  if (!(LAB_UNDERLAYS as readonly string[]).includes(u)) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `invalid lab underlay ${JSON.stringify(u)}: one of ${LAB_UNDERLAYS.join(', ')}`);
  }
  return u as LabUnderlay;
}

/** The address node i's agent advertises: its IPv6 one on an IPv6-only underlay, else IPv4. */
export function advertisedAddr(underlay: LabUnderlay, i: number): string {
  return underlay === 'ipv6' ? nodeAddr6(i) : nodeAddr(i);
}

/** `ip -n HOST -batch` for a host (or the client) on an underlay of the given families. */
export function renderHostUnderlay(underlay: LabUnderlay, addr4: string, addr6: string): string {
  const lines = ['link set lo up'];
  if (underlay !== 'ipv6') lines.push(`addr add ${addr4}/${UNDERLAY_PREFIX_LEN} dev eth0`);
  // nodad: the address is usable at once (no 1-2 s of tentative state before an agent binds it).
  if (underlay !== 'ipv4') lines.push(`addr add ${addr6}/${UNDERLAY6_PREFIX_LEN} dev eth0 nodad`);
  lines.push('link set eth0 up');
  return lines.join('\n') + '\n';
}

/** `ip -batch` for the root side: namespaces and veths (created directly in their namespaces). */
export function renderCreateNamespaces(lab: string, plan: LabNodePlan[]): string {
  const sw = switchNs(lab);
  const lines = [`netns add ${sw}`, `netns add ${clientNs(lab)}`];
  for (const n of plan) lines.push(`netns add ${n.netns}`);
  lines.push(`link add client netns ${sw} type veth peer name eth0 netns ${clientNs(lab)}`);
  for (const n of plan) lines.push(`link add ${n.name} netns ${sw} type veth peer name eth0 netns ${n.netns}`);
  return lines.join('\n') + '\n';
}

/** `ip -n SWITCH -batch`: bridge and ports. */
export function renderSwitch(plan: LabNodePlan[]): string {
  const lines = ['link set lo up', 'link add br0 type bridge', 'link set br0 type bridge stp_state 0 forward_delay 0', 'link set br0 up'];
  for (const port of ['client', ...plan.map((n) => n.name)]) lines.push(`link set ${port} master br0`, `link set ${port} up`);
  return lines.join('\n') + '\n';
}

/** One host on the lab underlay: its eth0 address and MAC. */
export interface UnderlayHost {
  addr: string;
  mac: string;
}

/** Every host on a lab's underlay: the client first, then the nodes in plan order. */
export function underlayHosts(plan: readonly LabNodePlan[]): UnderlayHost[] {
  return [{ addr: CLIENT_ADDR, mac: CLIENT_MAC }, ...plan.map((n) => ({ addr: n.underlay, mac: n.mac }))];
}

/**
 * `ip -n HOST -batch`: loopback, eth0's MAC and underlay address, and a permanent neighbour entry for every
 * other host on the underlay (`all`, self skipped).
 *
 * Why permanent neighbours: the kernel's IPv4 neighbour table is one table for the whole machine, all
 * namespaces together, and refuses a new resolved (ARP) entry past net.ipv4.neigh.default.gc_thresh3 (1024
 * here) with ENOBUFS ("No buffer space available"), while entries used in the last 5 s cannot be reclaimed. A
 * lab whose N hosts all gossip with each other holds N×(N−1) such entries (64 nodes: 4,032), which broke
 * every other lab on the machine. Permanent entries are exempt from the gc thresholds (measured on this
 * kernel: 1,200 permanent + 1,024 ARP entries accepted; 600 ARP entries in one namespace + 424 in another
 * = 1,024, then refused), so a lab with them adds no ARP entries at all between its hosts and changes no
 * sysctl. Anything else (a link set down flushes its permanent entries, a host outside the plan) falls back
 * to ARP as before.
 */
export function renderHost(self: UnderlayHost, all: readonly UnderlayHost[]): string {
  const lines = ['link set lo up', `link set eth0 address ${self.mac}`, `addr add ${self.addr}/${UNDERLAY_PREFIX_LEN} dev eth0`, 'link set eth0 up'];
  for (const h of all) if (h.addr !== self.addr) lines.push(`neigh replace ${h.addr} lladdr ${h.mac} dev eth0 nud permanent`);
  return lines.join('\n') + '\n';
}

/**
 * The host's resolv.conf as a lab agent's network namespace sees it. A lab agent shares the machine's
 * mount namespace (it is started with `nsenter --net`), so the lab applies iproute2's convention for it:
 * `/etc/netns/<host-ns>/resolv.conf` when that file exists, else /etc/resolv.conf (config `dns.resolvConf`).
 */
export function hostResolvConf(lab: string, node: string, exists: (p: string) => boolean = existsSync): string {
  const p = `/etc/netns/${hostNs(lab, node)}/resolv.conf`;
  return exists(p) ? p : '/etc/resolv.conf';
}
