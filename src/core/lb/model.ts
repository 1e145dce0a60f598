/**
 * Desired load-balancing state for ONE network namespace (a container/overlay sandbox, or the
 * node's ingress sandbox), and its compiled form: a flat list of "frontends" (what the kernel
 * matches on) each with the backends new connections may be sent to.
 *
 * The agent builds an `LbDesired` from the gossip tables (services × tasks) and the manager's VIPs;
 * the dataplane renders it. Pure: no I/O. Validation throws MeshError('MESHD_BAD_ARGUMENT') with
 * `details.path` naming the offending field, so `netctl` can point at it.
 */
import { MeshError } from '../errors.js';
import { canonicalIp6, isIp6 } from '../ipam/addr6.js';
import { algorithmOf, LB_ALGORITHMS, LB_LOCALITIES, MAX_WEIGHT, maxTier, tier, weighting, type LbAlgorithm, type LbLocality, type LbOptions } from './balance.js';

export * from './balance.js';

export type Proto = 'tcp' | 'udp';
export const PROTOS: readonly Proto[] = ['tcp', 'udp'];

/**
 * One task behind a service. `draining` tasks get no NEW connections (they are removed from the
 * selection), but connections already established keep flowing: NAT is decided on a flow's first
 * packet and conntrack (or the IPVS connection table) keeps it.
 */
export interface Backend {
  /** Task id; unique within a service. */
  id: string;
  /** IPv4 address of the task on the service's network. */
  ip: string;
  /**
   * The task's IPv6 address on a dual-stack network (canonical text), absent otherwise. Only
   * backends with one are targets of the service's IPv6 VIP (`VipService.vip6`).
   */
  ip6?: string;
  state: 'active' | 'draining';
  /** True when the task runs on this node (used by ingress `policy: 'local'` and locality). */
  local?: boolean;
  /** True when the task's node is in this node's zone (`node.labels.zone`; locality `zone`). */
  sameZone?: boolean;
  /**
   * Relative share of new connections (integer 1..MAX_WEIGHT, absent = 1), e.g. a canary split.
   * Only ratios between active backends matter.
   */
  weight?: number;
}

export interface ServicePort {
  proto: Proto;
  /** Port on the VIP that clients connect to. */
  port: number;
  /** Port the task listens on. */
  targetPort: number;
}

/** VIP balancing inside a sandbox: VIP:port → one of the service's active tasks. */
export interface VipService {
  id: string;
  name: string;
  /** No VIP = dnsrr mode: nothing is programmed (DNS answers with task IPs). */
  vip?: string;
  /**
   * IPv6 VIP (dual-stack network, issue #19 item 2 part 2; needs `vip`): the same ports balanced
   * over the backends' `ip6`, as frontends of their own (`vip fd00::… tcp 80`, see `isV6`).
   */
  vip6?: string;
  ports: ServicePort[];
  backends: Backend[];
  lb?: LbOptions;
}

/**
 * Routing mesh (ingress sandbox): any local address:publishedPort → a task.
 * `cluster`: all active tasks anywhere, DNAT + SNAT (masquerade) so replies come back through this
 *   sandbox whichever node the task is on; the task sees the sandbox's address.
 * `local`: only tasks with `local: true`, DNAT only — the task sees the client's real source IP
 *   (moby#25526); replies must route back via this sandbox (the task's default route does so).
 */
export interface IngressPublish {
  /** Service id (for comments and debug output). */
  service: string;
  publishedPort: number;
  proto: Proto;
  targetPort: number;
  policy: 'cluster' | 'local';
  /**
   * `ingress` (default): programmed in the node's ingress sandbox. `host` (`--publish mode=host`):
   * programmed in the node's own namespace, straight to this node's tasks (policy must be `local`:
   * only `local: true` backends, no masquerade, the task sees the client's address). A node with
   * no local task gets no frontend at all for it: the port is simply not open (connection refused).
   */
  mode?: 'ingress' | 'host';
  /**
   * `--publish ...,proxy-protocol=v1|v2` (policy cluster, TCP): the node's agent accepts the port
   * in userspace and writes a PROXY header before splicing to the ingress sandbox (src/agent/lb/
   * proxy-ports.ts). The kernel frontend is the same; only the host namespace's DNAT skips it.
   */
  proxyProtocol?: 'v1' | 'v2';
  backends: Backend[];
  lb?: LbOptions;
}

export interface LbDesired {
  services: VipService[];
  ingress: IngressPublish[];
}

export const EMPTY_DESIRED: LbDesired = Object.freeze({ services: [], ingress: [] }) as LbDesired;

export interface Target {
  ip: string;
  port: number;
}

/**
 * What the kernel matches on, and where it may send new connections. `targets` are in a
 * deterministic order (by ip, then port) so renders are stable and diffs are minimal.
 */
export interface Frontend {
  /** Stable identity: `vip 10.9.0.10 tcp 80` or `ingress tcp 8080`. */
  key: string;
  kind: 'vip' | 'ingress';
  /** Only for kind 'vip'. */
  vip?: string;
  /**
   * True for the IPv6 frontend of an ingress publish (`ingress6 tcp 8080`, see `isV6`): it matches
   * IPv6 packets to a local address and picks among the backends' `ip6`.
   */
  ipv6?: true;
  proto: Proto;
  port: number;
  /** Active backends: candidates for new connections. Empty → new connections are rejected. */
  targets: Target[];
  /** Draining backends: no new connections; kept so IPVS can hold them at weight 0. */
  draining: Target[];
  /** SNAT (masquerade) new connections — ingress with policy 'cluster'. */
  masquerade: boolean;
  /** Human label: service name/id and port. */
  comment: string;
  /** Absent = `random`. */
  algorithm?: LbAlgorithm;
  /** Weight of each target (same order), only when they are not all equal. IPVS: real server weights. */
  weights?: number[];
  /**
   * nftables slot list when weighted: each target repeated in proportion to its weight (at most
   * MAX_WEIGHTED_SLOTS slots unless there are more targets), so `numgen`/`jhash mod len` over the
   * slots is a weighted pick with the unweighted machinery. Absent = `targets`.
   */
  slots?: Target[];
}

/** Frontends by key, in no particular order (use `sortedFrontends` where order matters). */
export type Compiled = ReadonlyMap<string, Frontend>;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

/** Backends per service or publish (nftables: N and the slot number live in the 13 low bits of the mark). */
export const MAX_BACKENDS = 4096;

/**
 * Dotted-quad IPv4 → unsigned 32-bit number, or -1 when not canonical (no leading zeros, no
 * spaces). Hand-written: it runs for every backend on every sync (100k at 10k services × 10).
 */
export function ipv4ToInt(s: string): number {
  if (typeof s !== 'string' || s.length < 7 || s.length > 15) return -1;
  let out = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return -1;
      out = out * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else return -1;
  }
  if (dots !== 3 || digits === 0) return -1;
  return out * 256 + part;
}

export function isIPv4(s: string): boolean {
  return ipv4ToInt(s) >= 0;
}

function bad(path: string, msg: string): never {
  throw new MeshError('MESHD_BAD_ARGUMENT', `lb: ${path}: ${msg}`, { path });
}

function validPort(p: unknown): boolean {
  return typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
}

function checkPort(path: string, p: unknown): void {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535) bad(path, `port must be an integer 1..65535, got ${String(p)}`);
}

function checkProto(path: string, p: unknown): void {
  if (p !== 'tcp' && p !== 'udp') bad(path, `proto must be tcp or udp, got ${String(p)}`);
}

/**
 * Validates backends and returns their addresses as numbers (same order). Paths for error
 * messages are built only on error: this runs for every backend of every changed service (100k
 * at 10k services × 10 on a full sync). Small lists use linear duplicate checks (no Set churn).
 */
function checkBackends(path: string, backends: readonly Backend[]): number[] {
  if (!Array.isArray(backends)) bad(path, 'backends must be an array');
  const n = backends.length;
  if (n > MAX_BACKENDS) bad(path, `at most ${MAX_BACKENDS} backends, got ${n}`);
  const ints = new Array<number>(n);
  const small = n <= 32;
  const ids = small ? null : new Set<string>();
  const ips = small ? null : new Set<number>();
  const ip6s = small ? null : new Set<string>();
  for (let i = 0; i < n; i++) {
    const b = backends[i]!;
    if (typeof b.id !== 'string' || !ID.test(b.id)) bad(`${path}[${i}].id`, `invalid task id ${JSON.stringify(b.id)}`);
    let dupId = false;
    if (ids) {
      dupId = ids.has(b.id);
      ids.add(b.id);
    } else for (let j = 0; j < i && !dupId; j++) dupId = backends[j]!.id === b.id;
    if (dupId) bad(`${path}[${i}].id`, `duplicate task id ${b.id}`);
    const ip = typeof b.ip === 'string' ? ipv4ToInt(b.ip) : -1;
    if (ip < 0) bad(`${path}[${i}].ip`, `not an IPv4 address: ${JSON.stringify(b.ip)}`);
    let dupIp = false;
    if (ips) {
      dupIp = ips.has(ip);
      ips.add(ip);
    } else for (let j = 0; j < i && !dupIp; j++) dupIp = ints[j] === ip;
    if (dupIp) bad(`${path}[${i}].ip`, `two tasks share the address ${b.ip}`);
    ints[i] = ip;
    if (b.ip6 !== undefined) {
      checkIp6(`${path}[${i}].ip6`, b.ip6);
      let dup6 = false;
      if (ip6s) {
        dup6 = ip6s.has(b.ip6);
        ip6s.add(b.ip6);
      } else for (let j = 0; j < i && !dup6; j++) dup6 = backends[j]!.ip6 === b.ip6;
      if (dup6) bad(`${path}[${i}].ip6`, `two tasks share the address ${b.ip6}`);
    }
    if (b.state !== 'active' && b.state !== 'draining') bad(`${path}[${i}].state`, `must be active or draining, got ${String(b.state)}`);
    const w = b.weight;
    if (w !== undefined && (typeof w !== 'number' || !Number.isInteger(w) || w < 1 || w > MAX_WEIGHT)) bad(`${path}[${i}].weight`, `must be an integer 1..${MAX_WEIGHT}, got ${String(w)}`);
  }
  return ints;
}

/** Canonical IPv6 text only (renders and kernel read-backs compare strings). */
function checkIp6(path: string, s: unknown): void {
  if (typeof s !== 'string' || !isIp6(s)) bad(path, `not an IPv6 address: ${JSON.stringify(s)}`);
  if (canonicalIp6(s) !== s) bad(path, `not canonical IPv6 text: ${s} (want ${canonicalIp6(s)})`);
}

/** True for a frontend of an IPv6 VIP (rendered in the IPv6 table / as an IPv6 virtual service). */
export function isV6(f: Pick<Frontend, 'vip' | 'ipv6'>): boolean {
  return f.ipv6 === true || (f.vip !== undefined && f.vip.includes(':'));
}

function checkLb(path: string, lb: LbOptions | undefined): void {
  if (lb === undefined) return;
  if (typeof lb !== 'object' || lb === null) bad(path, 'must be an object');
  if (lb.algorithm !== undefined && !LB_ALGORITHMS.includes(lb.algorithm)) bad(`${path}.algorithm`, `must be one of ${LB_ALGORITHMS.join(', ')}, got ${String(lb.algorithm)}`);
  if (lb.locality !== undefined && !LB_LOCALITIES.includes(lb.locality)) bad(`${path}.locality`, `must be one of ${LB_LOCALITIES.join(', ')}, got ${String(lb.locality)}`);
}

function validateService(s: VipService, p: string): number[] {
  if (typeof s.id !== 'string' || !ID.test(s.id)) bad(`${p}.id`, `invalid service id ${JSON.stringify(s.id)}`);
  if (typeof s.name !== 'string' || s.name.length === 0 || s.name.length > 200) bad(`${p}.name`, 'name must be 1..200 characters');
  if (s.name.includes('"')) bad(`${p}.name`, 'name must not contain a double quote');
  if (s.vip !== undefined && (typeof s.vip !== 'string' || !isIPv4(s.vip))) bad(`${p}.vip`, `not an IPv4 address: ${JSON.stringify(s.vip)}`);
  if (s.vip === '0.0.0.0' || s.vip === '255.255.255.255') bad(`${p}.vip`, `unusable VIP ${s.vip}`);
  if (s.vip6 !== undefined) {
    if (s.vip === undefined) bad(`${p}.vip6`, 'an IPv6 VIP needs an IPv4 one (dual stack)');
    checkIp6(`${p}.vip6`, s.vip6);
    if (s.vip6 === '::') bad(`${p}.vip6`, 'unusable VIP ::');
  }
  if (!Array.isArray(s.ports)) bad(`${p}.ports`, 'must be an array');
  const ports = s.ports;
  for (let j = 0; j < ports.length; j++) {
    const pt = ports[j]!;
    if (pt.proto !== 'tcp' && pt.proto !== 'udp') checkProto(`${p}.ports[${j}].proto`, pt.proto);
    if (!validPort(pt.port)) checkPort(`${p}.ports[${j}].port`, pt.port);
    if (!validPort(pt.targetPort)) checkPort(`${p}.ports[${j}].targetPort`, pt.targetPort);
    for (let k = 0; k < j; k++) if (ports[k]!.proto === pt.proto && ports[k]!.port === pt.port) bad(`${p}.ports[${j}]`, `duplicate port ${pt.proto}/${pt.port}`);
  }
  checkLb(`${p}.lb`, s.lb);
  return checkBackends(`${p}.backends`, s.backends);
}

function validateIngress(g: IngressPublish, p: string): number[] {
  if (typeof g.service !== 'string' || !ID.test(g.service)) bad(`${p}.service`, `invalid service id ${JSON.stringify(g.service)}`);
  checkProto(`${p}.proto`, g.proto);
  checkPort(`${p}.publishedPort`, g.publishedPort);
  checkPort(`${p}.targetPort`, g.targetPort);
  if (g.policy !== 'cluster' && g.policy !== 'local') bad(`${p}.policy`, `must be cluster or local, got ${String(g.policy)}`);
  if (g.mode !== undefined && g.mode !== 'ingress' && g.mode !== 'host') bad(`${p}.mode`, `must be ingress or host, got ${String(g.mode)}`);
  if (g.mode === 'host' && g.policy !== 'local') bad(`${p}.policy`, 'host mode goes to local tasks only: policy must be local');
  if (g.proxyProtocol !== undefined && (g.proxyProtocol !== 'v1' && g.proxyProtocol !== 'v2' || g.policy !== 'cluster' || g.proto !== 'tcp' || g.mode === 'host')) bad(`${p}.proxyProtocol`, 'PROXY protocol: v1 or v2, TCP, policy cluster, mode ingress only');
  checkLb(`${p}.lb`, g.lb);
  return checkBackends(`${p}.backends`, g.backends);
}

function checkShape(d: LbDesired): void {
  if (!d || !Array.isArray(d.services) || !Array.isArray(d.ingress)) bad('desired', 'must have services[] and ingress[]');
}

/** Throws MESHD_BAD_ARGUMENT on the first problem found; returns the input unchanged otherwise. */
export function validateDesired(d: LbDesired): LbDesired {
  compile(d);
  return d;
}

interface Picked {
  active: string[];
  draining: string[];
  /** Weight per active address (only when some backend has a weight). */
  weights: Map<string, number> | null;
}

/**
 * Active and draining addresses of the backends passing `filter`, each sorted by numeric address
 * (`ints` = the addresses as numbers, from validation). Active backends outside the preferred
 * locality tier count as draining: no new connections (IPVS holds them at weight 0), established
 * ones continue. Insertion sort: lists are short, and usually already sorted.
 */
function split(backends: readonly Backend[], ints: readonly number[], filter: (b: Backend) => boolean, locality?: LbLocality): Picked {
  const a: number[] = [];
  const d: number[] = [];
  const top = maxTier(backends, filter, locality);
  let weighted = false;
  for (let i = 0; i < backends.length; i++) {
    const b = backends[i]!;
    if (!filter(b)) continue;
    const on = b.state === 'active' && (top === 2 || tier(b) <= top);
    (on ? a : d).push(i);
    if (on && b.weight !== undefined) weighted = true;
  }
  const sorted = (idx: number[]): string[] => {
    for (let i = 1; i < idx.length; i++) {
      const x = idx[i]!;
      let j = i - 1;
      while (j >= 0 && ints[idx[j]!]! > ints[x]!) {
        idx[j + 1] = idx[j]!;
        j--;
      }
      idx[j + 1] = x;
    }
    return idx.map((i) => backends[i]!.ip);
  };
  const weights = weighted ? new Map(a.map((i) => [backends[i]!.ip, backends[i]!.weight ?? 1])) : null;
  return { active: sorted(a), draining: sorted(d), weights };
}

function targetsAt(ips: readonly string[], port: number): Target[] {
  const out = new Array<Target>(ips.length);
  for (let i = 0; i < ips.length; i++) out[i] = { ip: ips[i]!, port };
  return out;
}

export function vipKey(vip: string, proto: Proto, port: number): string {
  return `vip ${vip} ${proto} ${port}`;
}
export function ingressKey(proto: Proto, port: number): string {
  return `ingress ${proto} ${port}`;
}
export function ingress6Key(proto: Proto, port: number): string {
  return `ingress6 ${proto} ${port}`;
}

/**
 * Per-object memo of validated, compiled frontends (see `compile`). Keys are the caller's service /
 * publish objects, so nothing outlives them.
 */
export type CompileMemo = WeakMap<VipService | IngressPublish, readonly Frontend[]>;

const ALL = (): boolean => true;

function serviceFrontends(s: VipService, p: string): Frontend[] {
  const ints = validateService(s, p);
  if (s.vip === undefined) return [];
  const algo = algorithmOf(s.lb);
  const of = (vip: string, picked: Picked, tag: string): Frontend[] => s.ports.map((pt) => {
    const targets = targetsAt(picked.active, pt.targetPort);
    const draining = targetsAt(picked.draining, pt.targetPort);
    return { key: vipKey(vip, pt.proto, pt.port), kind: 'vip', vip, proto: pt.proto, port: pt.port, targets, draining, masquerade: false, comment: `${s.name} ${pt.proto}/${pt.port}${tag}`, ...algo, ...weighting(targets, picked.weights) };
  });
  const v4 = of(s.vip, split(s.backends, ints, ALL, s.lb?.locality), '');
  if (s.vip6 === undefined) return v4;
  // IPv6: the backends that have an IPv6 address, in the IPv4 order (deterministic), mapped to it.
  const to6 = new Map<string, string>();
  for (const b of s.backends) if (b.ip6 !== undefined) to6.set(b.ip, b.ip6);
  const p4 = split(s.backends, ints, (b) => b.ip6 !== undefined, s.lb?.locality);
  const map = (ips: string[]): string[] => ips.map((ip) => to6.get(ip)!);
  const p6: Picked = { active: map(p4.active), draining: map(p4.draining), weights: p4.weights ? new Map([...p4.weights].map(([ip, w]) => [to6.get(ip)!, w])) : null };
  return [...v4, ...of(s.vip6, p6, ' ipv6')];
}

function ingressFrontends(g: IngressPublish, p: string): Frontend[] {
  const ints = validateIngress(g, p);
  const picked = split(g.backends, ints, (b) => g.policy === 'cluster' || b.local === true, g.lb?.locality);
  const targets = targetsAt(picked.active, g.targetPort);
  const draining = targetsAt(picked.draining, g.targetPort);
  const comment = `${g.service} ${g.proto}/${g.publishedPort} ${g.mode === 'host' ? 'host' : g.policy}`;
  const v4: Frontend = { key: ingressKey(g.proto, g.publishedPort), kind: 'ingress', proto: g.proto, port: g.publishedPort, targets, draining, masquerade: g.policy === 'cluster', comment, ...algorithmOf(g.lb), ...weighting(targets, picked.weights) };
  // IPv6 (routing mesh only): when some backend has an IPv6 ingress address, the same publish over
  // the backends that have one, mapped to it (the IPv4 order), as a frontend of its own.
  if (g.mode === 'host' || !g.backends.some((b) => b.ip6 !== undefined)) return [v4];
  const to6 = new Map<string, string>();
  for (const b of g.backends) if (b.ip6 !== undefined) to6.set(b.ip, b.ip6);
  const p4 = split(g.backends, ints, (b) => b.ip6 !== undefined && (g.policy === 'cluster' || b.local === true), g.lb?.locality);
  const map = (ips: string[]): string[] => ips.map((ip) => to6.get(ip)!);
  const t6 = targetsAt(map(p4.active), g.targetPort);
  const w6 = p4.weights ? new Map([...p4.weights].map(([ip, w]) => [to6.get(ip)!, w])) : null;
  const v6: Frontend = { key: ingress6Key(g.proto, g.publishedPort), kind: 'ingress', ipv6: true, proto: g.proto, port: g.publishedPort, targets: t6, draining: targetsAt(map(p4.draining), g.targetPort), masquerade: g.policy === 'cluster', comment: `${comment} ipv6`, ...algorithmOf(g.lb), ...weighting(t6, w6) };
  return [v4, v6];
}

/**
 * Validates, then flattens services × ports and ingress publishes into frontends keyed by what the
 * kernel matches. Two services claiming the same VIP:port, or two publishes of the same port, are
 * a conflict (MESHD_BAD_ARGUMENT). Services without a VIP (dnsrr) produce nothing.
 *
 * With a `memo`, a service / publish object seen before is not validated or compiled again and
 * yields the very same Frontend objects, so planning an endpoint change costs O(change) plus a
 * cheap pass over the rest. Contract: treat desired-state objects as immutable once passed in
 * (replace a changed service object, never mutate it in place).
 */
export function compile(d: LbDesired, memo?: CompileMemo): Compiled {
  checkShape(d);
  const out = new Map<string, Frontend>();
  const ids = new Set<string>();
  // paths are built only on error: this loop runs over every service on every sync
  const put = (fs: readonly Frontend[], path: () => string): void => {
    for (const f of fs) {
      const prev = out.get(f.key);
      if (prev) bad(path(), `conflict: ${f.key} is already used by ${prev.comment}`);
      out.set(f.key, f);
    }
  };
  const services = d.services;
  for (let i = 0; i < services.length; i++) {
    const s = services[i]!;
    let fs = memo?.get(s);
    if (!fs) {
      fs = serviceFrontends(s, `services[${i}]`);
      memo?.set(s, fs);
    }
    if (ids.has(s.id)) bad(`services[${i}].id`, `duplicate service id ${s.id}`);
    ids.add(s.id);
    put(fs, () => `services[${i}]`);
  }
  const ingress = d.ingress;
  for (let i = 0; i < ingress.length; i++) {
    const g = ingress[i]!;
    let fs = memo?.get(g);
    if (!fs) {
      fs = ingressFrontends(g, `ingress[${i}]`);
      memo?.set(g, fs);
    }
    put(fs, () => `ingress[${i}]`);
  }
  return out;
}

/**
 * Validated, compiled frontends of one service or publish object (memoized like `compile`).
 * `path` names it in errors, e.g. `services[3]`.
 */
export function compileOne(x: { kind: 'service'; s: VipService } | { kind: 'ingress'; g: IngressPublish }, path: string, memo?: CompileMemo): readonly Frontend[] {
  const o = x.kind === 'service' ? x.s : x.g;
  let fs = memo?.get(o);
  if (!fs) {
    fs = x.kind === 'service' ? serviceFrontends(x.s, path) : ingressFrontends(x.g, path);
    memo?.set(o, fs);
  }
  return fs;
}

/** Frontends in key order (renders that list everything must be deterministic). */
export function sortedFrontends(c: Compiled): Frontend[] {
  return [...c.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export function sameTargets(a: readonly Target[], b: readonly Target[]): boolean {
  return a.length === b.length && a.every((t, i) => t.ip === b[i]?.ip && t.port === b[i]?.port);
}

/** True when two frontends render identically (same key assumed). */
export function sameFrontend(a: Frontend, b: Frontend): boolean {
  if (a === b) return true;
  return a.masquerade === b.masquerade && a.comment === b.comment && sameTargets(a.targets, b.targets) && sameTargets(a.draining, b.draining) && a.algorithm === b.algorithm && sameWeights(a.weights, b.weights);
}

export function sameWeights(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((w, i) => w === b[i]));
}

/** The targets new connections are spread over, in slot order (weighted: repeated; see Frontend.slots). */
export function slotsOf(f: Pick<Frontend, 'targets' | 'slots'>): readonly Target[] {
  return f.slots ?? f.targets;
}
