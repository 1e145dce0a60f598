/**
 * What a network's driver, flags and options mean to the manager (issue #15's network rows):
 * docker's `network create -d overlay|macvlan --ip-range --aux-address --internal --label -o k=v`,
 * checked here before IPAM holds anything, and the rules services must follow on such networks.
 * Refusals are MESHD_UNSUPPORTED when docker would accept the request but meshd cannot honour
 * it (never accepted and dropped), MESHD_BAD_ARGUMENT when the request itself is wrong.
 *
 * - overlay `--internal`: a meshd overlay gives a task no way out today (its default route
 *   ends in the network's sandbox, which has no route further), so internal changes nothing
 *   on the wire; it is stored and shown, and a service on it cannot publish ports (`-p`,
 *   either mode): an internal network is never the ingress path, nor is host mode a way in.
 * - macvlan: each task gets a macvlan sub-interface (mode bridge) of the node's `parent`
 *   interface, with the address the manager's IPAM gave it (so two nodes never hand out the
 *   same one); no VXLAN, no VIP: the service's name resolves straight to its tasks'
 *   addresses (dnsrr-like), and publishing ports is refused (no routing mesh on a LAN).
 */
import type { ServiceSpec } from '../../core/spec/types.js';
import { MeshError } from '../../core/errors.js';
import type { NetworkRequest } from '../../core/ipam/networks.js';
import type { NetworkRecord } from './model.js';

export const NETWORK_DRIVERS = ['overlay', 'macvlan'] as const;
export type NetworkDriver = (typeof NETWORK_DRIVERS)[number];

/** A Linux interface name (IFNAMSIZ 16 with the NUL). */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
/** Docker label keys: printable, no '=' or whitespace. */
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$/;
const MACVLAN_MODES = ['bridge'];

/** The create body after the schema (model.ts networkCreateSchema). */
export interface NetworkCreateBody {
  name: string;
  driver: string;
  subnet?: string | undefined;
  gateway?: string | undefined;
  mtu?: number | undefined;
  attachable: boolean;
  ipRange?: string | undefined;
  auxAddresses?: Record<string, string> | undefined;
  internal: boolean;
  labels?: Record<string, string> | undefined;
  options?: Record<string, string> | undefined;
  defaultDeny?: boolean | undefined;
  ipv6?: boolean | undefined;
  subnet6?: string | undefined;
}

/**
 * Checks driver, options and labels (IPAM checks the addresses) and returns the IPAM request
 * plus the record fields beyond IPAM's.
 */
export function checkNetworkCreate(b: NetworkCreateBody): { ipam: NetworkRequest; extra: Pick<NetworkRecord, 'driver' | 'internal' | 'labels' | 'options' | 'defaultDeny'> } {
  if (!(NETWORK_DRIVERS as readonly string[]).includes(b.driver)) {
    throw new MeshError('MESHD_UNSUPPORTED', `unsupported network driver ${JSON.stringify(b.driver)}: meshd has ${NETWORK_DRIVERS.join(' and ')}`, { field: 'driver' });
  }
  const driver = b.driver as NetworkDriver;
  if (b.subnet !== undefined && b.subnet.includes(':')) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `subnet ${b.subnet} is IPv6: pass it as subnet6 with ipv6 (netctl: --ipv6 --subnet ${b.subnet})`, { field: 'subnet' });
  }
  for (const k of Object.keys(b.labels ?? {})) {
    if (!LABEL_KEY.test(k)) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid label key ${JSON.stringify(k)}: letters, digits and . _ / -, starting with a letter or digit`, { field: 'labels' });
  }
  const options = { ...(b.options ?? {}) };
  if (driver === 'overlay') {
    const k = Object.keys(options)[0];
    if (k !== undefined) throw new MeshError('MESHD_UNSUPPORTED', `overlay driver option ${JSON.stringify(k)} is not supported (the overlay takes no -o options; use --mtu for the MTU)`, { field: 'options' });
  } else {
    for (const k of Object.keys(options)) {
      if (k !== 'parent' && k !== 'macvlan_mode') throw new MeshError('MESHD_UNSUPPORTED', `macvlan driver option ${JSON.stringify(k)} is not supported (supported: parent, macvlan_mode)`, { field: 'options' });
    }
    if (options.parent === undefined) throw new MeshError('MESHD_BAD_ARGUMENT', 'a macvlan network needs -o parent=IFACE (the node interface its tasks\' sub-interfaces hang off)', { field: 'options' });
    if (!IFNAME.test(options.parent)) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid parent interface ${JSON.stringify(options.parent)}: 1-15 characters [A-Za-z0-9_.-]`, { field: 'options' });
    const mode = options.macvlan_mode ?? 'bridge';
    if (!MACVLAN_MODES.includes(mode)) throw new MeshError('MESHD_UNSUPPORTED', `macvlan_mode ${JSON.stringify(mode)} is not supported: only bridge (tasks on one node reach each other)`, { field: 'options' });
    options.macvlan_mode = mode;
    if (b.subnet === undefined) throw new MeshError('MESHD_BAD_ARGUMENT', 'a macvlan network needs --subnet (the subnet of the parent interface\'s LAN)', { field: 'subnet' });
    if (b.ipv6) throw new MeshError('MESHD_UNSUPPORTED', 'IPv6 on a macvlan network is not supported (dual stack is for overlay networks)', { field: 'ipv6' });
    if (b.internal) throw new MeshError('MESHD_UNSUPPORTED', 'an internal macvlan network is not supported: macvlan tasks sit on the parent\'s LAN (use an --internal overlay)', { field: 'internal' });
  }
  return {
    ipam: {
      name: b.name, attachable: b.attachable,
      ...(b.subnet !== undefined ? { subnet: b.subnet } : {}), ...(b.gateway !== undefined ? { gateway: b.gateway } : {}),
      ...(b.mtu !== undefined ? { mtu: b.mtu } : {}), ...(b.ipRange !== undefined ? { ipRange: b.ipRange } : {}),
      ...(b.auxAddresses !== undefined ? { auxAddresses: b.auxAddresses } : {}),
      ...(b.ipv6 ? { ipv6: true } : {}), ...(b.subnet6 !== undefined ? { subnet6: b.subnet6 } : {}),
    },
    extra: {
      driver, ...(b.internal ? { internal: true } : {}), ...(b.defaultDeny ? { defaultDeny: true } : {}),
      ...(b.labels && Object.keys(b.labels).length ? { labels: { ...b.labels } } : {}),
      ...(Object.keys(options).length ? { options } : {}),
    },
  };
}

/** The IPAM request that rebuilds a stored network's pool (state load). */
export function ipamRequestOf(n: NetworkRecord): NetworkRequest {
  return {
    name: n.name, subnet: n.subnet, gateway: n.gateway, vni: n.vni, attachable: n.attachable,
    ...(n.mtu !== undefined ? { mtu: n.mtu } : {}), ...(n.ipRange !== undefined ? { ipRange: n.ipRange } : {}),
    ...(n.auxAddresses !== undefined ? { auxAddresses: n.auxAddresses } : {}),
    ...(n.subnet6 !== undefined ? { ipv6: true, subnet6: n.subnet6, gateway6: n.gateway6 } : {}),
  };
}

/** A service's ports are refused on internal and macvlan networks (see the file comment). */
export function checkServiceNetworks(spec: Pick<ServiceSpec, 'name' | 'ports'>, nets: readonly NetworkRecord[]): void {
  if (spec.ports.length === 0) return;
  for (const n of nets) {
    if (n.internal) {
      throw new MeshError('MESHD_UNSUPPORTED', `service ${spec.name}: network ${n.name} is internal: its services cannot publish ports (an internal network is never an ingress path)`, { field: 'ports' });
    }
    if (n.driver === 'macvlan') {
      throw new MeshError('MESHD_UNSUPPORTED', `service ${spec.name}: publishing ports on macvlan network ${n.name} is not supported (no routing mesh on a macvlan LAN: reach the tasks by their addresses)`, { field: 'ports' });
    }
  }
}

/** Whether a network carries VIPs (macvlan: no; its names resolve to task addresses). */
export function hasVips(n: Pick<NetworkRecord, 'driver'>): boolean {
  return n.driver !== 'macvlan';
}

/**
 * `network ls --filter` as docker: `label=k` (has the key), `label=k=v`, `driver=`, `name=`
 * (substring), `id=` (prefix), `scope=`, `type=custom|builtin`. Several values of one key
 * match any, except `label`, where every one must match (docker's MatchKVList); several keys
 * must all match. An unknown key is refused, never ignored.
 */
export function filterNetworks<T extends Pick<NetworkRecord, 'id' | 'name' | 'driver' | 'labels' | 'ingress'>>(list: readonly T[], filters: readonly string[]): T[] {
  const by = new Map<string, string[]>();
  for (const f of filters) {
    const i = f.indexOf('=');
    if (i <= 0) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid filter ${JSON.stringify(f)}: KEY=VALUE`, { field: 'filter' });
    const k = f.slice(0, i);
    if (!['label', 'driver', 'name', 'id', 'scope', 'type'].includes(k)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `invalid filter key ${JSON.stringify(k)}: label, driver, name, id, scope or type`, { field: 'filter' });
    }
    by.set(k, [...(by.get(k) ?? []), f.slice(i + 1)]);
  }
  const one = (n: T, k: string, v: string): boolean => {
    switch (k) {
      case 'label': {
        const j = v.indexOf('=');
        const labels = n.labels ?? {};
        return j < 0 ? Object.hasOwn(labels, v) : labels[v.slice(0, j)] === v.slice(j + 1);
      }
      case 'driver': return n.driver === v;
      case 'name': return n.name.includes(v);
      case 'id': return n.id.startsWith(v);
      case 'scope': return v === 'swarm';
      default: return v === (n.ingress ? 'builtin' : 'custom');
    }
  };
  return list.filter((n) => [...by].every(([k, vs]) => (k === 'label' ? vs.every((v) => one(n, k, v)) : vs.some((v) => one(n, k, v)))));
}
