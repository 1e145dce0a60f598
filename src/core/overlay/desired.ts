/**
 * Desired kernel state of one node = f(networks hosted, remote endpoints, members).
 * Pure and deterministic: same input → byte-identical output (sorted everywhere), so
 * the diff against what the kernel holds is empty once converged.
 */
import { MeshError } from '../errors.js';
import { isUnderlayIp } from '../hostport.js';
import { macFromIp, normalizeMac, parseCidr, parseIp, cidrContains } from '../ipam/addr.js';
import { cidr6Contains, formatIp6, parseCidr6, parseIp6 } from '../ipam/addr6.js';
import {
  BRIDGE_NAME, type NodeState, type OverlayConfig, type OverlayNetwork, type RemoteEndpoint, type Sandbox,
  overlayMtu, sandboxName, vxlanName, vxlanOverheadOf,
} from './model.js';

export interface DesiredInput {
  config: OverlayConfig;
  /** Networks this node hosts (it has a local endpoint, or the network is attached here). */
  networks: readonly OverlayNetwork[];
  /** Remote endpoints from the gossip tables (entries whose nodeIp is ours are ignored). */
  remote: readonly RemoteEndpoint[];
  /**
   * Underlay addresses of current members. When given, endpoints on nodes that are not
   * members are dropped (their node went away), and these form the VXLAN guard's set.
   */
  members?: readonly string[];
}

export interface DesiredNode {
  state: NodeState;
  /** Sorted underlay addresses allowed to send VXLAN to this node (members minus self). */
  guardAllow: string[];
}

const byKey = <T>(key: (t: T) => string) => (a: T, b: T): number => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
/** Numeric IP order (so 10.0.0.10 sorts after 10.0.0.9); IPv6 addresses after every IPv4 one. */
export const ipKey = (ip: string): string => (ip.includes(':') ? `~${parseIp6(ip).toString(16).padStart(32, '0')}` : parseIp(ip).toString(16).padStart(8, '0'));

export function validateNetwork(n: OverlayNetwork): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n.id)) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid network id ${JSON.stringify(n.id)}`);
  const c = parseCidr(n.subnet);
  if (!cidrContains(c, parseIp(n.gateway))) throw new MeshError('MESHD_BAD_ARGUMENT', `gateway ${n.gateway} is outside ${n.subnet}`);
  if (!Number.isInteger(n.vni) || n.vni < 1 || n.vni > 16_777_215) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid VNI ${n.vni}`);
}

export function desiredNode(input: DesiredInput): DesiredNode {
  const { config } = input;
  if (!isUnderlayIp(config.underlayIp)) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid underlay address ${config.underlayIp}`);
  const members = input.members ? new Set(input.members) : null;
  const seenNs = new Map<string, string>();
  const seenVni = new Map<number, string>();
  const sandboxes: Sandbox[] = [];
  for (const n of input.networks) {
    validateNetwork(n);
    const ns = sandboxName(config.prefix, n.id);
    if (seenNs.has(ns)) throw new MeshError('MESHD_BAD_ARGUMENT', `networks ${seenNs.get(ns)} and ${n.id} map to the same sandbox ${ns}`);
    if (seenVni.has(n.vni)) throw new MeshError('MESHD_BAD_ARGUMENT', `networks ${seenVni.get(n.vni)} and ${n.id} share VNI ${n.vni}`);
    seenNs.set(ns, n.id);
    seenVni.set(n.vni, n.id);
    const mtu = overlayMtu(config.underlayMtu, n.mtu, vxlanOverheadOf(config.underlayIp));
    const subnet = parseCidr(n.subnet);
    const subnet6 = n.subnet6 !== undefined ? parseCidr6(n.subnet6) : undefined;
    const fdb = new Map<string, string>();
    const neigh = new Map<string, string>();
    for (const e of input.remote) {
      if (e.network !== n.id || e.nodeIp === config.underlayIp) continue;
      if (members && !members.has(e.nodeIp)) continue;
      if (!cidrContains(subnet, parseIp(e.ip))) continue; // stale entry from a re-created network
      const mac = normalizeMac(e.mac);
      fdb.set(mac, e.nodeIp);
      neigh.set(e.ip, mac);
      // Dual stack: the IPv6 neighbour next to the IPv4 one, same MAC (the VXLAN device's proxy answers ND too).
      if (subnet6 && e.ip6 !== undefined) {
        const v6 = parseIp6(e.ip6);
        if (cidr6Contains(subnet6, v6)) neigh.set(formatIp6(v6), mac);
      }
    }
    sandboxes.push({
      ns,
      network: n.id,
      bridge: { name: BRIDGE_NAME, mtu, up: true, addrs: [`${n.gateway}/${subnet.prefix}`] },
      vxlan: {
        name: vxlanName(n.vni), vni: n.vni, port: config.vxlanPort, local: config.underlayIp,
        learning: false, proxy: true, mtu, master: BRIDGE_NAME, up: true,
      },
      fdb: [...fdb].map(([mac, dst]) => ({ mac, dst })).sort(byKey((f) => f.mac)),
      neigh: [...neigh].map(([ip, mac]) => ({ ip, mac })).sort(byKey((x) => ipKey(x.ip))),
    });
  }
  sandboxes.sort(byKey((s) => s.ns));
  const guardAllow = [...new Set(input.members ?? [])].filter((m) => m !== config.underlayIp).sort(byKey(ipKey));
  return { state: { sandboxes, strayHostLinks: [] }, guardAllow };
}

/** MAC for a task endpoint (Docker's 02:42 + IPv4 bytes). Re-exported for the agent. */
export { macFromIp };
