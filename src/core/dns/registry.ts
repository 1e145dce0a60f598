/**
 * Per-network name registry for the embedded DNS (ARCHITECTURE §1, issue 6).
 *
 * The agent feeds it from gossip table events: one service entry per (network, service) and one task
 * entry per (network, task). It is pure: `now` (monotonic ms) is passed in and only used to record
 * `updatedAt` for `explain` (age of an answer's source).
 *
 * `generation` increases on every effective change (never on a no-op upsert), so a cache of encoded
 * answers keyed by generation is dropped by the very next query after any table change.
 *
 * Names are stored lowercased (DNS names are case-insensitive, RFC 4343). Lookups go through a per-network
 * index rebuilt lazily on the first lookup after a change: O(entries of that network) per change, O(1) per
 * query; with gossip churn of a few events per second and ≤ 10⁴ names per network this is cheap.
 *
 * Precedence when names collide inside one network: service name > alias > task name. An alias shared by
 * several services resolves to the union of their answers (Docker does the same for network aliases).
 *
 * Tasks also carry their replicated-service slot and the ports they listen on (issue 19 item 4): the
 * resolver derives `<slot>.<svc>` and SRV `_<port>._<proto>.<svc>` from them, so both are part of the
 * no-op check below — a changed slot or port list bumps `generation` and drops cached SRV/slot answers.
 *
 * Dual stack (issue #19 item 2): a task may carry an IPv6 address (`ip6`, stored canonical) — AAAA for
 * its names and `tasks.<svc>`, and a PTR key of its own. A vip-mode service on a dual-stack network has
 * an IPv6 VIP too (`vip6`, part 2): AAAA for its name and its own PTR key.
 */
import { MeshError } from '../errors.js';
import { canonicalIp6, isIp6 } from '../ipam/addr6.js';

export type ServiceMode = 'vip' | 'dnsrr';

export interface ServiceInput {
  name: string;
  network: string;
  mode: ServiceMode;
  /** Virtual IP (vip mode). A vip-mode service without a VIP answers NODATA. */
  vip?: string;
  /** IPv6 VIP (vip mode on a dual-stack network, issue #19 item 2 part 2): AAAA and ip6.arpa PTR. */
  vip6?: string;
  /** Extra names (network aliases) that resolve exactly like the service, `tasks.<alias>` included. */
  aliases?: readonly string[];
  /** Node that published this entry; `removeOwner(node)` drops it. Omit for manager-owned entries. */
  owner?: string;
}

export interface ServiceEntry {
  readonly name: string;
  readonly network: string;
  readonly mode: ServiceMode;
  readonly vip: string | undefined;
  readonly vip6: string | undefined;
  readonly aliases: readonly string[];
  readonly owner: string | undefined;
  /** `now` of the last effective change (ms, injected clock). */
  readonly updatedAt: number;
}

/** A port a task listens on (the endpoint record's `target`), for SRV answers. */
export interface TaskPort {
  readonly proto: 'tcp' | 'udp';
  readonly port: number;
}

/** Highest slot number the registry accepts (services have at most 10 000 replicas; slots start at 1). */
export const MAX_SLOT = 1_000_000;

export interface TaskInput {
  /** Task name, e.g. `web.1.k3x9...`; resolvable by itself and the PTR target of its IP. */
  name: string;
  network: string;
  /** Service the task belongs to (may be registered before or after the service itself). */
  service: string;
  ip: string;
  /** The task's IPv6 address on a dual-stack network (any valid spelling; stored canonical). */
  ip6?: string;
  healthy: boolean;
  /** Node running the task (the gossip table entry's owner). */
  owner: string;
  /** Slot of a replicated service's task (`<slot>.<svc>`); absent for global services. */
  slot?: number;
  /** Ports the task listens on (SRV targets); duplicates are merged, order does not matter. */
  ports?: readonly TaskPort[];
}

export interface TaskEntry {
  readonly name: string;
  readonly network: string;
  readonly service: string;
  readonly ip: string;
  /** Canonical IPv6 address (dual-stack networks), else undefined. */
  readonly ip6: string | undefined;
  readonly healthy: boolean;
  readonly owner: string;
  readonly slot: number | undefined;
  /** Sorted by proto then port, no duplicates. */
  readonly ports: readonly TaskPort[];
  readonly updatedAt: number;
}

/** What a (lowercased) name points at inside one network. */
export type NameTarget =
  | { readonly kind: 'service'; readonly services: readonly ServiceEntry[]; readonly via: 'name' | 'alias' }
  | { readonly kind: 'task'; readonly task: TaskEntry };

/** What an address (IPv4, or canonical IPv6) maps back to (PTR) inside one network. */
export type PtrTarget = { readonly kind: 'vip'; readonly service: ServiceEntry } | { readonly kind: 'task'; readonly task: TaskEntry };

/** Read-only lookup view of one network, valid until the next change. */
export interface NetworkView {
  readonly network: string;
  name(lowerName: string): NameTarget | undefined;
  /** Tasks of a service (by lowercased service name), healthy or not, sorted by name. */
  tasksOf(lowerService: string): readonly TaskEntry[];
  /** Tasks of a service in one slot, healthy or not, sorted by name (two during a start-first update). */
  slotOf(lowerService: string, slot: number): readonly TaskEntry[];
  ptr(ip: string): PtrTarget | undefined;
}

const LABEL_RE = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** True for a DNS name of 1..253 chars made of `[a-z0-9_-]` labels (lowercase; dots separate labels). */
export function isValidDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((l) => LABEL_RE.test(l));
}

export function isIPv4(s: string): boolean {
  return IPV4_RE.test(s);
}

function checkName(what: string, name: string): string {
  const lower = name.toLowerCase();
  if (!isValidDnsName(lower)) throw new MeshError('MESHD_BAD_ARGUMENT', `dns: invalid ${what} name ${JSON.stringify(name)}`);
  return lower;
}

function checkPorts(ports: readonly TaskPort[] | undefined): readonly TaskPort[] {
  const seen = new Map<string, TaskPort>();
  for (const p of ports ?? []) {
    if ((p.proto !== 'tcp' && p.proto !== 'udp') || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `dns: invalid task port ${JSON.stringify(p)} (tcp|udp and 1..65535 expected)`);
    }
    seen.set(`${p.proto}/${p.port}`, Object.freeze({ proto: p.proto, port: p.port }));
  }
  return Object.freeze([...seen.values()].sort((a, b) => (a.proto === b.proto ? a.port - b.port : a.proto < b.proto ? -1 : 1)));
}

function samePorts(a: readonly TaskPort[], b: readonly TaskPort[]): boolean {
  return a.length === b.length && a.every((p, i) => p.proto === b[i]!.proto && p.port === b[i]!.port);
}

function checkIp(what: string, ip: string): string {
  if (!isIPv4(ip)) throw new MeshError('MESHD_BAD_ARGUMENT', `dns: invalid ${what} address ${JSON.stringify(ip)} (IPv4 expected)`);
  return ip;
}

interface NetState {
  services: Map<string, ServiceEntry>;
  tasks: Map<string, TaskEntry>;
  index: NetworkView | undefined;
}

export class DnsRegistry {
  private gen = 0;
  private readonly nets = new Map<string, NetState>();

  /** Bumped on every effective change; caches keyed by it are invalid once it moves. */
  get generation(): number {
    return this.gen;
  }

  /** Inserts or replaces a service. Returns true when something changed. */
  upsertService(input: ServiceInput, now: number): boolean {
    const network = checkName('network', input.network);
    const name = checkName('service', input.name);
    if (input.mode !== 'vip' && input.mode !== 'dnsrr') throw new MeshError('MESHD_BAD_ARGUMENT', `dns: invalid mode ${String(input.mode)}`);
    const vip = input.vip === undefined ? undefined : checkIp('VIP', input.vip);
    if (input.vip6 !== undefined && !isIp6(input.vip6)) throw new MeshError('MESHD_BAD_ARGUMENT', `dns: invalid IPv6 VIP ${JSON.stringify(input.vip6)}`);
    const vip6 = input.vip6 === undefined ? undefined : canonicalIp6(input.vip6);
    const aliases = [...new Set((input.aliases ?? []).map((a) => checkName('alias', a)))].filter((a) => a !== name).sort();
    const net = this.net(network);
    const old = net.services.get(name);
    if (old && old.mode === input.mode && old.vip === vip && old.vip6 === vip6 && old.owner === input.owner &&
      old.aliases.length === aliases.length && old.aliases.every((a, i) => a === aliases[i])) return false;
    net.services.set(name, Object.freeze({ name, network, mode: input.mode, vip, vip6, aliases: Object.freeze(aliases), owner: input.owner, updatedAt: now }));
    this.changed(net);
    return true;
  }

  removeService(network: string, name: string): boolean {
    const net = this.nets.get(network.toLowerCase());
    if (!net || !net.services.delete(name.toLowerCase())) return false;
    this.changed(net);
    this.gc(network.toLowerCase(), net);
    return true;
  }

  /** Inserts or replaces a task (keyed by network + task name). Returns true when something changed. */
  upsertTask(input: TaskInput, now: number): boolean {
    const network = checkName('network', input.network);
    const name = checkName('task', input.name);
    const service = checkName('service', input.service);
    const ip = checkIp('task', input.ip);
    if (input.ip6 !== undefined && !isIp6(input.ip6)) throw new MeshError('MESHD_BAD_ARGUMENT', `dns: invalid task IPv6 address ${JSON.stringify(input.ip6)}`);
    const ip6 = input.ip6 === undefined ? undefined : canonicalIp6(input.ip6);
    if (typeof input.owner !== 'string' || input.owner.length === 0) throw new MeshError('MESHD_BAD_ARGUMENT', 'dns: task owner must be a node name');
    const slot = input.slot;
    if (slot !== undefined && (!Number.isInteger(slot) || slot < 0 || slot > MAX_SLOT)) throw new MeshError('MESHD_BAD_ARGUMENT', `dns: invalid task slot ${String(slot)} (0..${MAX_SLOT} expected)`);
    const ports = checkPorts(input.ports);
    const net = this.net(network);
    const old = net.tasks.get(name);
    if (old && old.service === service && old.ip === ip && old.ip6 === ip6 && old.healthy === input.healthy && old.owner === input.owner && old.slot === slot && samePorts(old.ports, ports)) return false;
    net.tasks.set(name, Object.freeze({ name, network, service, ip, ip6, healthy: !!input.healthy, owner: input.owner, slot, ports, updatedAt: now }));
    this.changed(net);
    return true;
  }

  removeTask(network: string, name: string): boolean {
    const net = this.nets.get(network.toLowerCase());
    if (!net || !net.tasks.delete(name.toLowerCase())) return false;
    this.changed(net);
    this.gc(network.toLowerCase(), net);
    return true;
  }

  /**
   * Drops every task owned by `node` and every service entry whose `owner` is `node` (gossip declared it
   * dead or it left). Returns how many entries went. One generation bump for the whole batch.
   */
  removeOwner(node: string): number {
    let n = 0;
    for (const [key, net] of this.nets) {
      let touched = false;
      for (const [k, t] of net.tasks) if (t.owner === node) { net.tasks.delete(k); n++; touched = true; }
      for (const [k, s] of net.services) if (s.owner === node) { net.services.delete(k); n++; touched = true; }
      if (touched) {
        net.index = undefined;
        this.gc(key, net);
      }
    }
    if (n > 0) this.gen++;
    return n;
  }

  /** Lookup view of a network (undefined when nothing is registered on it). */
  view(network: string): NetworkView | undefined {
    const net = this.nets.get(network);
    if (!net) return undefined;
    return (net.index ??= buildIndex(network, net));
  }

  networks(): string[] {
    return [...this.nets.keys()].sort();
  }

  services(network: string): ServiceEntry[] {
    return [...(this.nets.get(network)?.services.values() ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  tasks(network: string): TaskEntry[] {
    return [...(this.nets.get(network)?.tasks.values() ?? [])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Total entries (services + tasks) over all networks. */
  size(): number {
    let n = 0;
    for (const net of this.nets.values()) n += net.services.size + net.tasks.size;
    return n;
  }

  private net(network: string): NetState {
    let net = this.nets.get(network);
    if (!net) {
      net = { services: new Map(), tasks: new Map(), index: undefined };
      this.nets.set(network, net);
    }
    return net;
  }

  private changed(net: NetState): void {
    net.index = undefined;
    this.gen++;
  }

  private gc(key: string, net: NetState): void {
    if (net.services.size === 0 && net.tasks.size === 0) this.nets.delete(key);
  }
}

function byName<T extends { name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function buildIndex(network: string, net: NetState): NetworkView {
  const names = new Map<string, NameTarget>();
  const tasksBySvc = new Map<string, TaskEntry[]>();
  const bySlot = new Map<string, TaskEntry[]>();
  const ptrs = new Map<string, PtrTarget>();
  const tasks = [...net.tasks.values()].sort(byName);
  const services = [...net.services.values()].sort(byName);
  for (const t of tasks) {
    names.set(t.name, { kind: 'task', task: t });
    let l = tasksBySvc.get(t.service);
    if (!l) tasksBySvc.set(t.service, (l = []));
    l.push(t);
    if (t.slot !== undefined) {
      const k = `${t.service}\0${t.slot}`;
      let sl = bySlot.get(k);
      if (!sl) bySlot.set(k, (sl = []));
      sl.push(t);
    }
    if (!ptrs.has(t.ip)) ptrs.set(t.ip, { kind: 'task', task: t });
    if (t.ip6 !== undefined && !ptrs.has(t.ip6)) ptrs.set(t.ip6, { kind: 'task', task: t });
  }
  const aliasTo = new Map<string, ServiceEntry[]>();
  for (const s of services) {
    for (const a of s.aliases) {
      let l = aliasTo.get(a);
      if (!l) aliasTo.set(a, (l = []));
      l.push(s);
    }
  }
  for (const [a, l] of aliasTo) names.set(a, { kind: 'service', services: l, via: 'alias' });
  for (const s of services) {
    names.set(s.name, { kind: 'service', services: [s], via: 'name' });
    // A VIP maps back to its service even when a task somehow shares the address.
    if (s.vip !== undefined) ptrs.set(s.vip, { kind: 'vip', service: s });
    if (s.vip6 !== undefined) ptrs.set(s.vip6, { kind: 'vip', service: s });
  }
  const none: readonly TaskEntry[] = [];
  return {
    network,
    name: (n) => names.get(n),
    tasksOf: (svc) => tasksBySvc.get(svc) ?? none,
    slotOf: (svc, slot) => bySlot.get(`${svc}\0${slot}`) ?? none,
    ptr: (ip) => ptrs.get(ip),
  };
}
