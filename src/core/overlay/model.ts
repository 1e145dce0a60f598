/**
 * The overlay's kernel model, shared by the desired-state function, the diff, and the
 * netlink adapter that reads the kernel back. One sandbox namespace per network per node
 * holds bridge `br0` (gateway address) and the VXLAN device `vx-<vni>`; remote endpoints
 * become static FDB entries (MAC → remote underlay IP) and permanent neighbour entries
 * (IP → MAC) on the VXLAN device, which answers ARP itself (`proxy`), so no broadcast
 * ever needs to cross the underlay.
 *
 * Only objects the overlay owns are modelled: task veths on br0, learnt bridge entries and
 * anything else in a sandbox are left alone by the diff.
 */

/** One overlay network as the agent knows it (from the manager / network table). */
export interface OverlayNetwork {
  /** Stable network id (hex or any [A-Za-z0-9]); the sandbox name uses its first 12 chars. */
  id: string;
  name: string;
  vni: number;
  /** "10.0.1.0/24" */
  subnet: string;
  /** "10.0.1.1" */
  gateway: string;
  /** Overlay MTU; default underlay MTU − VXLAN_OVERHEAD. */
  mtu?: number;
  /** Dual stack (issue #19 item 2): "fd00:1::/64"; remote endpoints' IPv6 neighbours are programmed only then. */
  subnet6?: string;
}

/** A remote endpoint as the gossip table delivers it. */
export interface RemoteEndpoint {
  /** Network id. */
  network: string;
  ip: string;
  /** Its IPv6 address on a dual-stack network (same MAC, so the same FDB entry carries it). */
  ip6?: string;
  mac: string;
  /** Underlay address of the node that hosts it. */
  nodeIp: string;
}

/** A task endpoint hosted on this node (attached by the runtime, not by the overlay). */
export interface LocalEndpoint {
  network: string;
  ip: string;
  mac: string;
}

export interface OverlayConfig {
  /** Namespace name prefix, e.g. "meshd-" or a lab/test prefix. */
  prefix: string;
  /** Host namespace of this node (the one holding the underlay); null = the current one. */
  hostNs: string | null;
  /** This node's underlay address (VXLAN `local`). */
  underlayIp: string;
  /** Underlay MTU (bytes). */
  underlayMtu: number;
  /** VXLAN UDP port, default 4789 (IANA). */
  vxlanPort: number;
}

/** IPv4 outer (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) = 50 bytes. */
export const VXLAN_OVERHEAD = 50;
/** Over an IPv6 underlay the outer header is 40 bytes, not 20: 70 bytes (issue 19 §2). */
export const VXLAN6_OVERHEAD = 70;

/** VXLAN overhead for an underlay address: 70 when it is IPv6 (has a colon), else 50. */
export function vxlanOverheadOf(underlayIp: string): number {
  return underlayIp.includes(':') ? VXLAN6_OVERHEAD : VXLAN_OVERHEAD;
}
export const DEFAULT_VXLAN_PORT = 4789;
export const BRIDGE_NAME = 'br0';

export interface VxlanLink {
  name: string;
  vni: number;
  port: number;
  /** Underlay source address. */
  local: string;
  learning: boolean;
  proxy: boolean;
  mtu: number;
  /** Bridge it is enslaved to, or null. */
  master: string | null;
  up: boolean;
}

export interface BridgeLink {
  name: string;
  mtu: number;
  up: boolean;
  /** "ip/prefix" strings, sorted. */
  addrs: string[];
}

export interface FdbEntry {
  mac: string;
  /** Remote underlay IP. */
  dst: string;
}

export interface NeighEntry {
  ip: string;
  mac: string;
}

/**
 * A task's (or the ingress sandbox's) veth end enslaved to the bridge, read back only: the overlay
 * does not own these links, but it owns their MTU — they must carry what the bridge and VXLAN
 * device carry, or frames larger than the VXLAN MTU vanish on the bridge without an error.
 */
export interface PortLink {
  name: string;
  mtu: number;
}

/** One sandbox namespace's overlay-owned state (desired or read back). */
export interface Sandbox {
  ns: string;
  /** Network id (desired) or "" when read back from a namespace we cannot map. */
  network: string;
  bridge: BridgeLink | null;
  vxlan: VxlanLink | null;
  /** Sorted by mac. */
  fdb: FdbEntry[];
  /** Sorted by ip. */
  neigh: NeighEntry[];
  /** Bridge ports other than the VXLAN device (actual only; absent in desired state). */
  ports?: PortLink[];
}

/** Everything the overlay owns on one node. */
export interface NodeState {
  /** Sorted by ns. */
  sandboxes: Sandbox[];
  /** VXLAN links left in the host namespace (a crash between create and move); actual only. */
  strayHostLinks: string[];
}

export function sandboxName(prefix: string, networkId: string): string {
  return `${prefix}ov-${networkId.slice(0, 12)}`;
}

/** VXLAN device name; ≤ 15 chars (IFNAMSIZ) for any VNI up to 16777215. */
export function vxlanName(vni: number): string {
  return `vx-${vni}`;
}

/** The overlay MTU of a network: its `--mtu`, else the (effective) underlay MTU minus VXLAN overhead (50, or 70 over IPv6). */
export function overlayMtu(underlayMtu: number, override?: number, overhead: number = VXLAN_OVERHEAD): number {
  return override ?? underlayMtu - overhead;
}
