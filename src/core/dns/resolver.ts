/**
 * Pure resolver over the DNS registry (issue 6). Given the networks of the asking sandbox and a question,
 * it decides: answer (A / PTR / SRV records), NODATA (known name, other type: NOERROR with no answer — never
 * NXDOMAIN, so a stub resolver asking A and AAAA in parallel does not conclude the name is gone), NXDOMAIN
 * (a slot or SRV name under a service we know, that no task holds: the name space below a service is
 * ours, so we say it does not exist rather than leak the question upstream), or forward (not ours: the
 * host's upstream resolvers decide).
 *
 * Names it knows, in each of the sandbox's networks (first network that knows a name wins):
 *   `<svc>` / `<alias>`        → the VIP (vip mode) or every healthy task IP (dnsrr mode)
 *   `tasks.<svc>` / `tasks.<alias>` → every healthy task IP (whatever the mode)
 *   `<task-name>`              → that task's IP (also when unhealthy: it names one container)
 *   any of the above + `.<network>` → the same, looked up only in that network (if the sandbox is on it)
 *   `d.c.b.a.in-addr.arpa` PTR → `<svc>.<network>` for a VIP, `<task-name>.<network>` for a task IP
 *   `<slot>.<svc>` (issue 19)  → the healthy task(s) in that slot of a replicated service (two during a
 *                                start-first update); NODATA while the slot's tasks are all unhealthy;
 *                                NXDOMAIN when no task holds the slot (scaled down; global services have none)
 *   `_<port>._<proto>.<svc>`, `_http._tcp.<svc>` (80), `_https._tcp.<svc>` (443) SRV → one record per
 *                                healthy task listening on that port: priority 0, weight 1, the port, and
 *                                target `<task-name>.<network>` whose A record rides in the additional
 *                                section; NODATA while none is healthy, NXDOMAIN when no task has the port.
 *                                Canonical order (slot, then name), never shuffled: SRV clients pick by weight.
 * Dual stack (issue #19 item 2): AAAA for a task name, `tasks.<svc>`, `<slot>.<svc>` and a dnsrr service
 * gives the healthy tasks' IPv6 addresses; a vip-mode `<svc>` answers its IPv6 VIP (NODATA on IPv4-only networks);
 * a 32-nibble `….ip6.arpa` PTR names the task. AAAA sets come in canonical order, not shuffled (the
 * server's in-place shuffle works on 4-byte A records).
 * Case-insensitive, trailing dot optional. Classes other than IN/ANY are forwarded.
 *
 * Records come back in a canonical (sorted) order with `shuffle: true` when the set is a load-spreading
 * set (several addresses): callers shuffle per query (`shuffleInPlace`), which lets the server cache the
 * encoded answer and still hand out a fresh order every time.
 */
import type { Rng } from '../clock.js';
import { parseIp6, parseReverse6 } from '../ipam/addr6.js';
import type { DnsRegistry, NameTarget, NetworkView, ServiceEntry, TaskEntry } from './registry.js';
import { parseSlotName, parseSrvName } from './srv.js';

export const QTYPE = Object.freeze({ A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 });
export const QCLASS = Object.freeze({ IN: 1, CH: 3, ANY: 255 });

/** An answer record; its owner is always the question name. */
export type DnsRecord =
  /** QTYPE.A (data = dotted IPv4), QTYPE.AAAA (data = IPv6 text) or QTYPE.PTR (data = dotted name without trailing dot). */
  | { readonly type: 1 | 12 | 28; readonly data: string }
  /** QTYPE.SRV (RFC 2782): data = target name (dotted, no trailing dot). */
  | { readonly type: 33; readonly data: string; readonly priority: number; readonly weight: number; readonly port: number };

/** An additional-section A record (the address of an SRV target), with its own owner name. */
export interface AdditionalRecord {
  readonly name: string;
  readonly type: 1;
  readonly data: string;
}

/** Where an answer came from (for `netctl debug dns`). */
export interface SourceInfo {
  readonly kind: 'service' | 'alias' | 'task' | 'vip-ptr' | 'task-ptr';
  readonly network: string;
  readonly name: string;
  readonly owner: string | undefined;
  /** `now` of the entry's last change (ms, injected clock). */
  readonly updatedAt: number;
  readonly detail?: string;
}

export type Resolution =
  | { readonly kind: 'answer'; readonly records: readonly DnsRecord[]; readonly additional?: readonly AdditionalRecord[]; readonly shuffle: boolean; readonly sources: readonly SourceInfo[] }
  | { readonly kind: 'nodata'; readonly sources: readonly SourceInfo[]; readonly reason: string }
  | { readonly kind: 'nxdomain'; readonly reason: string }
  | { readonly kind: 'forward'; readonly reason: string };

/** Lowercases and strips one trailing dot. */
export function normalizeName(name: string): string {
  const n = name.endsWith('.') ? name.slice(0, -1) : name;
  return n.toLowerCase();
}

/** `4.3.2.1.in-addr.arpa` → `1.2.3.4`; undefined when it is not exactly one IPv4 reverse name. */
export function parseReverseV4(lowerName: string): string | undefined {
  const suffix = '.in-addr.arpa';
  if (!lowerName.endsWith(suffix)) return undefined;
  const parts = lowerName.slice(0, -suffix.length).split('.');
  if (parts.length !== 4) return undefined;
  for (const p of parts) if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined;
  return `${parts[3]}.${parts[2]}.${parts[1]}.${parts[0]}`;
}

export function reverseNameV4(ip: string): string {
  const p = ip.split('.');
  return `${p[3]}.${p[2]}.${p[1]}.${p[0]}.in-addr.arpa`;
}

/** Fisher–Yates in place with an injected rng; returns the array. */
export function shuffleInPlace<T>(a: T[], rng: Rng): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

function svcSource(s: ServiceEntry, kind: 'service' | 'alias'): SourceInfo {
  return { kind, network: s.network, name: s.name, owner: s.owner, updatedAt: s.updatedAt, detail: s.mode === 'vip' ? `vip ${s.vip ?? '(none)'}` : 'dnsrr' };
}

function taskSource(t: TaskEntry, kind: 'task' | 'task-ptr' = 'task'): SourceInfo {
  return { kind, network: t.network, name: t.name, owner: t.owner, updatedAt: t.updatedAt, detail: `${t.ip}${t.ip6 !== undefined ? ` ${t.ip6}` : ''}${t.healthy ? '' : ' (unhealthy)'}` };
}

function ipCompare(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (x[i]! !== y[i]!) return x[i]! - y[i]!;
  return 0;
}

function ip6Compare(a: string, b: string): number {
  const x = parseIp6(a);
  const y = parseIp6(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

interface Found {
  ips: string[];
  /** IPv6 addresses (AAAA), canonical order. */
  ips6: string[];
  sources: SourceInfo[];
  multi: boolean;
  /** Set for SRV names: the records (ips then unused) and the addresses of their targets. */
  srv?: { records: DnsRecord[]; additional: AdditionalRecord[] };
}

/** A name below a service we know that nothing holds (answered NXDOMAIN when no network knows it). */
interface Missing {
  nx: string;
}

/** Healthy tasks' IPv4 addresses (returned) and IPv6 ones (added to `out6`). */
function healthyTaskIps(view: NetworkView, services: readonly ServiceEntry[] | string, sources: SourceInfo[], out6?: Set<string>): string[] {
  const ips = new Set<string>();
  const names = typeof services === 'string' ? [services] : services.map((s) => s.name);
  for (const n of names) {
    for (const t of view.tasksOf(n)) {
      if (!t.healthy) continue;
      ips.add(t.ip);
      if (t.ip6 !== undefined) out6?.add(t.ip6);
      sources.push(taskSource(t));
    }
  }
  return [...ips].sort(ipCompare);
}

const sorted6 = (s: Set<string>): string[] => [...s].sort(ip6Compare);

/** Service names a name refers to: a service or alias, else a service known only by its tasks so far. */
function servicesNamed(view: NetworkView, name: string): { names: string[]; sources: SourceInfo[] } | undefined {
  const target = view.name(name);
  if (target?.kind === 'service') return { names: target.services.map((s) => s.name), sources: target.services.map((s) => svcSource(s, target.via === 'name' ? 'service' : 'alias')) };
  if (target === undefined && view.tasksOf(name).length > 0) return { names: [name], sources: [] };
  return undefined;
}

function bySlotThenName(a: TaskEntry, b: TaskEntry): number {
  const x = a.slot ?? Number.MAX_SAFE_INTEGER;
  const y = b.slot ?? Number.MAX_SAFE_INTEGER;
  return x !== y ? x - y : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** `<slot>.<svc>` and `_<port>._<proto>.<svc>` inside one network (after exact names missed). */
function lookupDerived(view: NetworkView, name: string): Found | Missing | undefined {
  const srv = parseSrvName(name);
  if (srv) {
    const svc = servicesNamed(view, srv.rest);
    if (!svc) return undefined;
    const tasks = new Map<string, TaskEntry>();
    for (const n of svc.names) for (const t of view.tasksOf(n)) if (t.ports.some((p) => p.port === srv.port && p.proto === srv.proto)) tasks.set(t.name, t);
    if (tasks.size === 0) return { nx: `no task of ${svc.names.join(', ')} listens on ${srv.port}/${srv.proto}` };
    const sources = svc.sources;
    const records: DnsRecord[] = [];
    const additional: AdditionalRecord[] = [];
    for (const t of [...tasks.values()].sort(bySlotThenName)) {
      sources.push(taskSource(t));
      if (!t.healthy) continue;
      const target = `${t.name}.${view.network}`;
      records.push({ type: QTYPE.SRV, data: target, priority: 0, weight: 1, port: srv.port });
      additional.push({ name: target, type: QTYPE.A, data: t.ip });
    }
    return { ips: [], ips6: [], sources, multi: false, srv: { records, additional } };
  }
  const slot = parseSlotName(name);
  if (slot) {
    const svc = servicesNamed(view, slot.rest);
    if (!svc) return undefined;
    const sources = svc.sources;
    const ips = new Set<string>();
    const ips6 = new Set<string>();
    let held = 0;
    for (const n of svc.names) {
      for (const t of view.slotOf(n, slot.slot)) {
        held++;
        sources.push(taskSource(t));
        if (t.healthy) ips.add(t.ip);
        if (t.healthy && t.ip6 !== undefined) ips6.add(t.ip6);
      }
    }
    if (held === 0) return { nx: `no task of ${svc.names.join(', ')} in slot ${slot.slot}` };
    return { ips: [...ips].sort(ipCompare), ips6: sorted6(ips6), sources, multi: true };
  }
  return undefined;
}

/** Resolves a lowercased relative name inside one network; undefined when the network does not know it. */
function lookupIn(view: NetworkView, name: string): Found | Missing | undefined {
  if (name.startsWith('tasks.')) {
    const rest = name.slice(6);
    const target = view.name(rest);
    const sources: SourceInfo[] = [];
    const v6 = new Set<string>();
    if (target?.kind === 'service') {
      for (const s of target.services) sources.push(svcSource(s, target.via === 'name' ? 'service' : 'alias'));
      const ips = healthyTaskIps(view, target.services, sources, v6);
      return { ips, ips6: sorted6(v6), sources, multi: true };
    }
    // Tasks can arrive (gossip) before their service entry: still answer `tasks.<svc>` from them.
    if (target === undefined && view.tasksOf(rest).length > 0) {
      const ips = healthyTaskIps(view, rest, sources, v6);
      return { ips, ips6: sorted6(v6), sources, multi: true };
    }
    // otherwise fall through: `tasks.x` might itself be a task or alias name (unlikely, but exact names win)
  }
  const target: NameTarget | undefined = view.name(name);
  if (!target) return lookupDerived(view, name);
  if (target.kind === 'task') {
    const t = target.task;
    return { ips: [t.ip], ips6: t.ip6 !== undefined ? [t.ip6] : [], sources: [taskSource(t)], multi: false };
  }
  const sources: SourceInfo[] = [];
  const ips = new Set<string>();
  const ips6 = new Set<string>();
  for (const s of target.services) {
    sources.push(svcSource(s, target.via === 'name' ? 'service' : 'alias'));
    if (s.mode === 'vip') {
      // The IPv6 VIP (dual-stack network, issue #19 item 2 part 2) is the AAAA; none on IPv4-only networks.
      if (s.vip !== undefined) ips.add(s.vip);
      if (s.vip6 !== undefined) ips6.add(s.vip6);
    } else {
      for (const ip of healthyTaskIps(view, [s], sources, ips6)) ips.add(ip);
    }
  }
  return { ips: [...ips].sort(ipCompare), ips6: sorted6(ips6), sources, multi: true };
}

export interface ResolveOptions {
  /** When given, load-spreading answers come back shuffled (else canonical order with shuffle: true). */
  rng?: Rng;
}

/**
 * Resolves one question for a sandbox attached to `networks` (in preference order).
 * `qname` may be null when the wire name cannot be represented as text (a label holding a dot or a
 * non-printable byte): such a name is never ours and is forwarded.
 */
export function resolve(registry: DnsRegistry, networks: readonly string[], qname: string | null, qtype: number, qclass: number, opts: ResolveOptions = {}): Resolution {
  if (qname === null) return { kind: 'forward', reason: 'name not representable as text' };
  if (qclass !== QCLASS.IN && qclass !== QCLASS.ANY) return { kind: 'forward', reason: `class ${qclass}` };
  const name = normalizeName(qname);
  if (name.length === 0) return { kind: 'forward', reason: 'root' };
  const views: NetworkView[] = [];
  for (const n of networks) {
    const v = registry.view(n);
    if (v) views.push(v);
  }
  if (views.length === 0) return { kind: 'forward', reason: 'no registered names on the sandbox networks' };

  const rev = parseReverseV4(name) ?? parseReverse6(name);
  if (rev !== undefined) {
    for (const v of views) {
      const p = v.ptr(rev);
      if (!p) continue;
      const target = p.kind === 'vip' ? `${p.service.name}.${v.network}` : `${p.task.name}.${v.network}`;
      const sources = [p.kind === 'vip' ? { ...svcSource(p.service, 'service'), kind: 'vip-ptr' as const } : taskSource(p.task, 'task-ptr')];
      if (qtype === QTYPE.PTR || qtype === QTYPE.ANY) return { kind: 'answer', records: [{ type: QTYPE.PTR, data: target }], shuffle: false, sources };
      return { kind: 'nodata', sources, reason: `type ${qtype} for a reverse name` };
    }
    return { kind: 'forward', reason: 'address not in the registry' };
  }

  // First network that knows the name wins; a name below a known service that nothing holds is NXDOMAIN
  // only when no network (nor the `<name>.<network>` form) knows it.
  let found: Found | undefined;
  let missing: Missing | undefined;
  const take = (r: Found | Missing | undefined): boolean => {
    if (r === undefined) return false;
    if ('nx' in r) {
      missing ??= r;
      return false;
    }
    found = r;
    return true;
  };
  for (const v of views) if (take(lookupIn(v, name))) break;
  if (!found) {
    // `<name>.<network>`: only networks the sandbox is attached to.
    for (const v of views) {
      const suffix = `.${v.network}`;
      if (name.length > suffix.length && name.endsWith(suffix) && take(lookupIn(v, name.slice(0, -suffix.length)))) break;
    }
  }
  if (!found) return missing ? { kind: 'nxdomain', reason: missing.nx } : { kind: 'forward', reason: 'not a registered name' };
  return answerFor(found, qtype, opts);
}

function answerFor(found: Found, qtype: number, opts: ResolveOptions): Resolution {
  if (found.srv) {
    if (qtype !== QTYPE.SRV && qtype !== QTYPE.ANY) return { kind: 'nodata', sources: found.sources, reason: `type ${qtype} for an SRV name` };
    if (found.srv.records.length === 0) return { kind: 'nodata', sources: found.sources, reason: 'no healthy task listens on the port' };
    return { kind: 'answer', records: found.srv.records, additional: found.srv.additional, shuffle: false, sources: found.sources };
  }
  if (qtype === QTYPE.AAAA) {
    if (found.ips6.length === 0) {
      return { kind: 'nodata', sources: found.sources, reason: found.ips.length ? 'no IPv6 address (IPv4-only network)' : 'no healthy address (no healthy task)' };
    }
    return { kind: 'answer', records: found.ips6.map((ip) => ({ type: QTYPE.AAAA, data: ip })), shuffle: false, sources: found.sources };
  }
  if (qtype !== QTYPE.A && qtype !== QTYPE.ANY) return { kind: 'nodata', sources: found.sources, reason: `type ${qtype} for a name with A/AAAA addresses only` };
  if (found.ips.length === 0) return { kind: 'nodata', sources: found.sources, reason: 'no healthy address (no VIP / no healthy task)' };
  const records: DnsRecord[] = found.ips.map((ip) => ({ type: QTYPE.A, data: ip }));
  // ANY on a dual-stack name: A then AAAA, unshuffled (the server's shuffle handles A-only sets).
  if (qtype === QTYPE.ANY && found.ips6.length) {
    return { kind: 'answer', records: [...records, ...found.ips6.map((ip) => ({ type: QTYPE.AAAA, data: ip }))], shuffle: false, sources: found.sources };
  }
  const shuffle = found.multi && records.length > 1;
  if (shuffle && opts.rng) shuffleInPlace(records, opts.rng);
  return { kind: 'answer', records, shuffle, sources: found.sources };
}

/** `netctl debug dns` view of one resolution: what, from which entries, owned by which node, how old. */
export interface Explanation {
  readonly question: { readonly name: string; readonly type: number; readonly networks: readonly string[] };
  readonly outcome: 'answer' | 'nodata' | 'nxdomain' | 'forward';
  readonly records: readonly DnsRecord[];
  /** SRV answers: the targets' addresses (additional section). */
  readonly additional?: readonly AdditionalRecord[];
  readonly sources: readonly (SourceInfo & { readonly ageMs: number })[];
  readonly note: string;
  readonly generation: number;
}

export function explain(registry: DnsRegistry, networks: readonly string[], qname: string, qtype: number, now: number): Explanation {
  const r = resolve(registry, networks, qname, qtype, QCLASS.IN);
  const question = { name: normalizeName(qname), type: qtype, networks: [...networks] };
  const age = (s: SourceInfo): SourceInfo & { ageMs: number } => ({ ...s, ageMs: Math.max(0, now - s.updatedAt) });
  if (r.kind === 'forward') return { question, outcome: 'forward', records: [], sources: [], note: `forwarded upstream: ${r.reason}`, generation: registry.generation };
  if (r.kind === 'nxdomain') return { question, outcome: 'nxdomain', records: [], sources: [], note: `NXDOMAIN: ${r.reason}`, generation: registry.generation };
  if (r.kind === 'nodata') return { question, outcome: 'nodata', records: [], sources: r.sources.map(age), note: `NOERROR, no answer: ${r.reason}`, generation: registry.generation };
  const note = r.shuffle ? 'address order is shuffled per query' : r.records.length > 1 ? 'canonical order (SRV: clients pick by weight)' : 'single answer';
  return { question, outcome: 'answer', records: r.records, ...(r.additional ? { additional: r.additional } : {}), sources: r.sources.map(age), note, generation: registry.generation };
}
