/**
 * Reads the overlay's kernel state back into the core model (ip/bridge JSON output).
 * Parsers are pure functions of the JSON text so they are unit-tested on captured output.
 * Reading costs 3 processes per sandbox (addr+link details, neighbours, FDB) plus one
 * `ip netns list` and one look at the host namespace, whatever the number of entries.
 */
import { MeshError } from '../../core/errors.js';
import { canonicalIp6 } from '../../core/ipam/addr6.js';
import { ipKey } from '../../core/overlay/desired.js';
import type { BridgeLink, FdbEntry, NeighEntry, NodeState, PortLink, Sandbox, VxlanLink } from '../../core/overlay/model.js';
import { BRIDGE_NAME } from '../../core/overlay/model.js';
import type { Exec } from '../exec.js';

interface JLink {
  ifname?: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; local6?: string; port?: number; learning?: boolean; proxy?: boolean } };
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

function parseJson<T>(text: string, what: string): T {
  const t = text.trim();
  if (t === '') return [] as unknown as T;
  try {
    return JSON.parse(t) as T;
  } catch (e) {
    throw new MeshError('MESHD_INTERNAL', `cannot parse ${what} JSON: ${(e as Error).message}`, { text: t.slice(0, 500) });
  }
}

/** `ip netns list` → names (the output is "name" or "name (id: N)"). */
export function parseNetnsList(text: string): string[] {
  return text.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n !== '');
}

/** `ip -j -d addr show` of a sandbox → bridge and VXLAN link (overlay-owned only). */
export function parseSandboxLinks(text: string): { bridge: BridgeLink | null; vxlan: VxlanLink | null; ports: PortLink[] } {
  const links = parseJson<JLink[]>(text, 'ip addr');
  let bridge: BridgeLink | null = null;
  let vxlan: VxlanLink | null = null;
  const ports: PortLink[] = [];
  for (const l of links) {
    if (l.master === BRIDGE_NAME && l.linkinfo?.info_kind === 'veth' && l.ifname) ports.push({ name: l.ifname, mtu: l.mtu ?? 0 });
    const up = (l.flags ?? []).includes('UP');
    if (l.ifname === BRIDGE_NAME && l.linkinfo?.info_kind === 'bridge') {
      const addrs = (l.addr_info ?? []).filter((a) => a.family === 'inet' && a.local).map((a) => `${a.local}/${a.prefixlen}`).sort();
      bridge = { name: BRIDGE_NAME, mtu: l.mtu ?? 0, up, addrs };
    } else if (l.linkinfo?.info_kind === 'vxlan' && /^vx-\d+$/.test(l.ifname ?? '')) {
      const d = l.linkinfo.info_data ?? {};
      vxlan = {
        name: l.ifname ?? '', vni: d.id ?? 0, port: d.port ?? 0, local: d.local ?? (d.local6 ? canonicalIp6(d.local6) : ''), // local6: an IPv6 underlay
        learning: d.learning ?? true, proxy: d.proxy ?? false, mtu: l.mtu ?? 0, master: l.master ?? null, up,
      };
    }
  }
  return { bridge, vxlan, ports: ports.sort((a, b) => (a.name < b.name ? -1 : 1)) };
}

/** `ip -j neigh show nud permanent` → permanent entries on the given device. */
export function parseNeigh(text: string, dev: string): NeighEntry[] {
  const rows = parseJson<{ dst?: string; dev?: string; lladdr?: string; state?: string[] }[]>(text, 'ip neigh');
  return rows
    .filter((r) => r.dev === dev && r.dst && r.lladdr && (r.state ?? []).includes('PERMANENT'))
    // IPv6 ones too (dual-stack networks), in canonical form so they compare with the desired ones.
    .map((r) => ({ ip: r.dst!.includes(':') ? canonicalIp6(r.dst!) : r.dst!, mac: (r.lladdr as string).toLowerCase() }))
    .sort((a, b) => (ipKey(a.ip) < ipKey(b.ip) ? -1 : 1));
}

/** `bridge -j fdb show` → the VXLAN device's own remote entries (those with a dst). */
export function parseFdb(text: string, dev: string): FdbEntry[] {
  const rows = parseJson<{ mac?: string; ifname?: string; dst?: string; flags?: string[] }[]>(text, 'bridge fdb');
  const m = new Map<string, string>();
  for (const r of rows) {
    if (r.ifname !== dev || !r.dst || !r.mac || r.mac === '00:00:00:00:00:00') continue;
    m.set(r.mac.toLowerCase(), r.dst.includes(':') ? canonicalIp6(r.dst) : r.dst); // an IPv6 underlay's dst
  }
  return [...m].map(([mac, dst]) => ({ mac, dst })).sort((a, b) => (a.mac < b.mac ? -1 : 1));
}

/** Stray `vx-N` VXLAN links left in the host namespace. */
export function parseStrayHostLinks(text: string): string[] {
  return parseJson<JLink[]>(text, 'ip link')
    .filter((l) => l.linkinfo?.info_kind === 'vxlan' && /^vx-\d+$/.test(l.ifname ?? ''))
    .map((l) => l.ifname as string)
    .sort();
}

/** Reads one sandbox namespace. */
export async function readSandbox(exec: Exec, ns: string): Promise<Sandbox> {
  const [links, neigh, fdb] = await Promise.all([
    exec.check('ip', ['-j', '-d', '-n', ns, 'addr', 'show']),
    exec.check('ip', ['-j', '-n', ns, 'neigh', 'show', 'nud', 'permanent']),
    exec.check('bridge', ['-j', '-n', ns, 'fdb', 'show']),
  ]);
  const { bridge, vxlan, ports } = parseSandboxLinks(links);
  const dev = vxlan?.name ?? '';
  return { ns, network: '', bridge, vxlan, fdb: vxlan ? parseFdb(fdb, dev) : [], neigh: vxlan ? parseNeigh(neigh, dev) : [], ports };
}

/** Reads every sandbox with our prefix plus stray links in the host namespace. */
export async function readNode(exec: Exec, prefix: string, hostNs: string | null): Promise<NodeState> {
  const names = parseNetnsList(await exec.check('ip', ['netns', 'list'])).filter((n) => n.startsWith(`${prefix}ov-`)).sort();
  const hostArgs = hostNs ? ['-n', hostNs] : [];
  const [sandboxes, host] = await Promise.all([
    Promise.all(names.map((ns) => readSandbox(exec, ns))),
    exec.check('ip', ['-j', '-d', ...hostArgs, 'link', 'show', 'type', 'vxlan']),
  ]);
  return { sandboxes, strayHostLinks: parseStrayHostLinks(host) };
}
