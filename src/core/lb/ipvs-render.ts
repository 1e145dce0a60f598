/**
 * Desired (compiled) state → IPVS, the way Docker's libnetwork does it (service_linux.go): each
 * frontend gets a firewall mark; a small nftables table marks packets by `ip daddr . l4proto . dport`
 * (VIP) or `l4proto . dport` on local addresses (ingress), and IPVS holds one fwmark virtual service
 * per frontend (`-A -f MARK -s rr`) with its tasks as masqueraded real servers
 * (`-a -f MARK -r IP:PORT -m -w 1`). Balancing choices (model.ts `LbAlgorithm`): source-hash → `sh`,
 * weighted (canary) → `wrr` with the weights, otherwise `rr` (IPVS has no random scheduler). Draining tasks stay at weight 0: IPVS sends them no new
 * connections but keeps existing ones (what Docker does on task removal). A virtual service with no
 * usable real server answers new connections with ICMP port unreachable (connection refused at once).
 *
 * VIPs must be local addresses for IPVS (it hooks LOCAL_IN); the adapter adds them to `lo` with the
 * `ip -batch` script rendered here. Ingress `cluster` marks are listed in `snat-marks` and masqueraded
 * in postrouting (needs `net.ipv4.vs.conntrack=1`, set by the adapter).
 *
 * `ipvsadm -R` is a batch, not a transaction: a failure part-way leaves a partial state, which the
 * syncer treats like any failure — the next apply is a full resync. A full resync never clears the
 * table (`-C` would take every service away for a moment, and with `expire_nodest_conn=1` drop the
 * connections in flight): it diffs the kernel's own read-back (`ipvsadm -S -n` + the mark table,
 * ipvs-save.ts) against the desired state and adds, edits and deletes only what differs, keeping the
 * marks the kernel already uses. Pure; golden-tested.
 *
 * IPv6 VIPs (dual-stack networks, issue #19 item 2 part 2) are address services instead of fwmark
 * ones — `-A -t [fd00::10]:80 -s rr`, reals `-r [fd00::2]:80` — with the VIP on lo as a /128: IPVS
 * matches them by address in LOCAL_IN, so they need no mark and the IPv4 mark table is unchanged.
 * A task's own connection to its own IPv6 VIP is masqueraded like the IPv4 `vip-snat-marks` case
 * (see `renderIpvs6`); they are read back from `ipvsadm -S -n` like the fwmark services.
 *
 * IPv6 published ports (`ingress6 …` frontends, the ingress sandbox; issue #19 item 2) are fwmark
 * services of the IPv6 family (`-A -f MARK -6 -s rr`, reals `-a -f MARK -6 -r [ADDR]:PORT -m`):
 * IPVS keys fwmark services by (mark, family), and an `ip` table never sees IPv6 packets, so their
 * marks are set by the `ip6 meshd-ipvs6` table (`ingress-marks`, `snat-marks` for `cluster`; see
 * `renderIpvs6`). They take marks from the same space as the IPv4 frontends (one mark, one meaning,
 * whatever the family), so a namespace without them renders exactly as before.
 */
import { diffCompiled, diffSets } from './diff.js';
import { isV6, sortedFrontends, type Compiled, type Frontend, type Target } from './model.js';
import { ipvsScheduler } from './kernel.js';
import { EMPTY_IPVS_VIEW, type IpvsKernelView, type IpvsSavedService } from './ipvs-save.js';
import { elementKey } from './nftables-render.js';

export const IPVS_NFT_TABLE = 'meshd-ipvs';
/** The `ip6` table: the IPv6 VIPs' masquerade and the IPv6 published ports' marks (renderIpvs6). */
export const IPVS_NFT6_TABLE = 'meshd-ipvs6';
/** First firewall mark handed out (Docker also starts its fwmarks at 256). */
export const FWMARK_BASE = 0x100;
export const FWMARK_MAX = 0x0fffffff;

export type MarkTable = ReadonlyMap<string, number>;

/** An IPv6 VIP: an IPVS address service (`-t [VIP6]:PORT`), the only frontends without a fwmark. */
export function isAddrService(f: Pick<Frontend, 'kind' | 'vip' | 'ipv6'>): boolean {
  return f.kind === 'vip' && isV6(f);
}

/** An IPv6 published port: a fwmark service of the IPv6 family, marked by the `ip6` table. */
export function isFwmark6(f: Pick<Frontend, 'kind' | 'vip' | 'ipv6'>): boolean {
  return f.kind === 'ingress' && isV6(f);
}

/**
 * Keeps the marks of frontends that still exist (a mark must not move under live connections) and
 * gives each new frontend the lowest free mark ≥ FWMARK_BASE, in key order (deterministic). Marks
 * released by this very transition are not reused in it, so one transaction never gives a mark two
 * meanings; they become free on the next sync.
 */
export function assignMarks(prev: MarkTable, c: Compiled): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>(prev.values());
  for (const k of c.keys()) {
    if (isAddrService(c.get(k)!)) continue;
    const m = prev.get(k);
    if (m !== undefined) {
      out.set(k, m);
    }
  }
  let next = FWMARK_BASE;
  for (const k of [...c.keys()].filter((x) => !out.has(x) && !isAddrService(c.get(x)!)).sort()) {
    if (out.has(k)) continue;
    while (used.has(next)) next++;
    if (next > FWMARK_MAX) throw new RangeError('fwmark space exhausted');
    out.set(k, next);
    used.add(next);
  }
  return out;
}

export interface IpvsPlan {
  /** `ipvsadm-restore` input. Empty string = nothing to do. */
  ipvs: string;
  /** nftables script for the companion mark table. Empty string = nothing to do. */
  nft: string;
  /** `ip -batch -force` script adding/removing VIP addresses on `lo`. */
  addrs: string;
  /** Marks in force after this plan is applied. */
  marks: Map<string, number>;
}

function mark(marks: MarkTable, f: Frontend): number {
  const m = marks.get(f.key);
  if (m === undefined) throw new RangeError(`no fwmark for ${f.key}`);
  return m;
}

/** `ADDR:PORT` as ipvsadm writes it (IPv6 in brackets). */
function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * How ipvsadm names a frontend's virtual service: `-f MARK`, `-f MARK -6` for an IPv6 published
 * port (what `ipvsadm -S -n` prints for it, so a resync compares specs as they are), or
 * `-t|-u [VIP6]:PORT` for an IPv6 VIP.
 */
export function ipvsSpec(marks: MarkTable, f: Frontend): string {
  if (isAddrService(f)) return `${f.proto === 'udp' ? '-u' : '-t'} ${hostPort(f.vip!, f.port)}`;
  return isFwmark6(f) ? `-f ${mark(marks, f)} -6` : `-f ${mark(marks, f)}`;
}

function real(spec: string, t: Target, w: number, op: '-a' | '-e' = '-a'): string {
  return `${op} ${spec} -r ${hostPort(t.ip, t.port)} -m -w ${w}`;
}

function serviceLines(spec: string, f: Frontend): string[] {
  return [`-A ${spec} -s ${ipvsScheduler(f)}`, ...f.targets.map((t, i) => real(spec, t, f.weights?.[i] ?? 1)), ...f.draining.map((t) => real(spec, t, 0))];
}

function vipAddrs(c: Compiled): Set<string> {
  const s = new Set<string>();
  for (const f of c.values()) if (f.kind === 'vip' && f.vip) s.add(f.vip);
  return s;
}

/** `ip` argument of a VIP on lo: a host route of its family. */
const loAddr = (a: string): string => (a.includes(':') ? `${a}/128` : `${a}/32`);

function markElem(f: Frontend, m: number): string {
  return `${elementKey(f)} : ${m}`;
}

const T = `ip ${IPVS_NFT_TABLE}`;

/**
 * The nft set a frontend's mark belongs to, if any. `snat-marks`: ingress `cluster` frontends,
 * always masqueraded (replies must come back through this node). `vip-snat-marks`: VIPs,
 * masqueraded only when the packet's source is an address of this namespace (`fib saddr type
 * local`): IPVS needs the VIP on each task's `lo`, so a task's own connection to its VIP takes
 * the VIP as its source; IPVS rewrites only the destination, and the chosen task (which also
 * holds the VIP) would answer itself — the connection hangs. Masquerading gives it the task's
 * network address, as Docker's IPVS mesh does. Forwarded VIP traffic keeps its client address.
 */
function snatSet(f: Frontend): 'snat-marks' | 'vip-snat-marks' | null {
  if (f.masquerade) return 'snat-marks';
  return f.kind === 'vip' ? 'vip-snat-marks' : null;
}

/**
 * The marks a full resync starts from: the kernel's (the mark table is what routes live packets
 * now, e.g. after an agent restart), then the syncer's own memory for keys the kernel lacks, unless
 * that mark already means something else in the kernel.
 */
export function resyncMarks(prevMarks: MarkTable, kernel: IpvsKernelView): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const [k, m] of kernel.marks) {
    if (used.has(m)) continue;
    out.set(k, m);
    used.add(m);
  }
  for (const [k, m] of prevMarks) {
    if (out.has(k) || used.has(m)) continue;
    out.set(k, m);
    used.add(m);
  }
  return out;
}

/**
 * `ipvsadm -R` lines taking the kernel's IPVS table to the desired one: services the desired state
 * lacks (any fwmark not in use, any address:port service) are deleted; a desired service missing
 * from the kernel is added whole; one present gets only its scheduler, added, re-weighted and
 * deleted real servers. Deletions first, then the frontends in key order (deterministic).
 */
function resyncLines(fs: Frontend[], marks: MarkTable, kernel: readonly IpvsSavedService[]): string[] {
  // by spec: `-f MARK` (IPv4 frontends), `-f MARK -6` (IPv6 published ports) or `-t [VIP6]:PORT`
  // (IPv6 VIPs); ipvsadm -S -n prints them so
  const want = new Map(fs.map((f) => [ipvsSpec(marks, f), f]));
  const out: string[] = [];
  const bySpec = new Map<string, IpvsSavedService>();
  for (const k of kernel) {
    if (want.has(k.spec) && (k.fwmark !== null || isAddrService(want.get(k.spec)!))) bySpec.set(k.spec, k);
    else out.push(`-D ${k.spec}`);
  }
  for (const [spec, f] of want) {
    const k = bySpec.get(spec);
    if (!k) {
      out.push(...serviceLines(spec, f));
      continue;
    }
    if (k.scheduler !== ipvsScheduler(f) || k.extra !== '') out.push(`-E ${spec} -s ${ipvsScheduler(f)}`);
    const have = new Map(k.reals.map((r) => [hostPort(r.ip, r.port), r]));
    const wf = weights(f);
    for (const [addr, w] of wf) {
      const r = have.get(addr);
      if (!r) out.push(real(spec, parseTarget(addr), w));
      else if (r.weight !== w || r.forward !== 'm') out.push(real(spec, parseTarget(addr), w, '-e'));
    }
    for (const addr of have.keys()) if (!wf.has(addr)) out.push(`-d ${spec} -r ${addr}`);
  }
  return out;
}

const T6 = `ip6 ${IPVS_NFT6_TABLE}`;

function vip6Addrs(c: Compiled): string[] {
  const s = new Set<string>();
  for (const f of c.values()) if (isAddrService(f)) s.add(f.vip!);
  return [...s].sort();
}

/** An IPv6 published port in the `ip6` mark table: its map element, its mark, masqueraded or not, without active target. */
export interface Mark6 {
  elem: string;
  mark: number;
  masquerade: boolean;
  /** No active target: new TCP connections get a reset from the table (see `renderIpvs6`). */
  empty?: boolean;
}

/** The IPv6 published ports of `c` with their marks, in key order (what `renderIpvs6` lists). */
export function marks6Of(c: Compiled, marks: MarkTable): Mark6[] {
  return sortedFrontends(c).filter(isFwmark6).map((f) => ({ elem: elementKey(f), mark: mark(marks, f), masquerade: f.masquerade, ...(f.targets.length === 0 ? { empty: true } : {}) }));
}

/**
 * The `ip6 meshd-ipvs6` table: everything IPVS needs from nftables for IPv6, rendered whole
 * (delete first) whenever any of it changes — small, one element per IPv6 VIP or published port.
 *
 * `vips` + the first `nat-post` rule: the IPv6 twin of `vip-snat-marks` (see `snatSet` for why a
 * task's own connection to its VIP must be masqueraded): IPv6 VIPs are address services and carry
 * no mark, so the rule keys on what conntrack recorded before IPVS rewrote the destination (`ct
 * original ip6 daddr`, a VIP; IPVS keeps the entry with `vs.conntrack=1`), on a source that is an
 * address of this namespace (`fib saddr type local`: the VIP itself on lo), and on a packet leaving
 * the namespace (`oifname != "lo"`: a VIP port no service has is delivered locally and left
 * alone). Forwarded VIP traffic keeps its client address.
 *
 * `ingress` (IPv6 published ports, `ingress6 …`): `ingress-marks` (`proto . port : mark`) marks
 * packets to any local address in prerouting and output, as the IPv4 table does, so the `-6` fwmark
 * service takes them; `snat-marks` lists the `cluster` ones, masqueraded in `nat-post` (replies must
 * come back through this sandbox); `policy=local` ones are not (the task sees the client's address).
 * With neither, only the delete (a stale table goes); without `ingress` the render is exactly what
 * it was before IPv6 published ports existed on IPVS.
 */
export function renderIpvs6(vips: readonly string[], ingress: readonly Mark6[] = []): string {
  const head = `table ${T6}\ndelete table ${T6}\n`;
  if (vips.length === 0 && ingress.length === 0) return head;
  const body: string[] = [];
  const post: string[] = [];
  if (vips.length) {
    body.push(`\tset vips {\n\t\ttype ipv6_addr\n\t\telements = { ${vips.join(', ')} }\n\t}`);
    post.push('\t\tct original ip6 daddr @vips oifname != "lo" fib saddr type local masquerade');
  }
  if (ingress.length) {
    const snat = ingress.filter((x) => x.masquerade).map((x) => String(x.mark));
    const empty = ingress.filter((x) => x.empty).map((x) => x.elem);
    const reset = empty.length ? '\t\tct state new fib daddr type local meta l4proto . th dport @empty-ingress meta l4proto tcp reject with tcp reset\n' : '';
    const rule = `\t\tfib daddr type local meta mark set meta l4proto . th dport map @ingress-marks\n${reset}`;
    body.push(
      `\tmap ingress-marks {\n\t\ttype inet_proto . inet_service : mark\n\t\telements = { ${ingress.map((x) => `${x.elem} : ${x.mark}`).join(', ')} }\n\t}`,
      `\tset snat-marks {\n\t\ttype mark\n${snat.length ? `\t\telements = { ${snat.join(', ')} }\n` : ''}\t}`,
      ...(empty.length ? [`\tset empty-ingress {\n\t\ttype inet_proto . inet_service\n\t\telements = { ${empty.join(', ')} }\n\t}`] : []),
      `\tchain mangle-pre {\n\t\ttype filter hook prerouting priority -150; policy accept;\n${rule}\t}`,
      `\tchain mangle-out {\n\t\ttype route hook output priority -150; policy accept;\n${rule}\t}`,
    );
    post.push('\t\tmeta mark @snat-marks masquerade');
  }
  body.push(`\tchain nat-post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n${post.join('\n')}\n\t}`);
  return `${head}table ${T6} {\n${body.join('\n')}\n}\n`;
}

/** What `renderIpvs6` depends on, as one comparable string (an incremental plan re-renders on change). */
function ipvs6Sig(c: Compiled, marks: MarkTable): string {
  return `${vip6Addrs(c).join(' ')}|${marks6Of(c, marks).map((x) => `${x.elem}:${x.mark}:${x.masquerade}:${x.empty === true}`).join(' ')}`;
}

/**
 * A full resync: `kernel` is what the namespace holds now (EMPTY_IPVS_VIEW for a new one); the IPVS
 * part is the difference (see resyncLines), the mark table is replaced in one nft transaction
 * (atomic: no packet sees it half-written), VIP addresses are (re)placed on lo.
 */
export function renderIpvsFull(c: Compiled, prevMarks: MarkTable = new Map(), kernel: IpvsKernelView = EMPTY_IPVS_VIEW): IpvsPlan {
  const marks = assignMarks(resyncMarks(prevMarks, kernel), c);
  const all = sortedFrontends(c);
  const lines = resyncLines(all, marks, kernel.services);
  // the ip mark table routes IPv4 frontends only (IPv6 VIPs are address services, IPv6 published
  // ports are marked by the ip6 table)
  const fs = all.filter((f) => !isV6(f));
  const ipvs = lines.length ? lines.join('\n') + '\n' : '';
  const els = (kind: Frontend['kind']): string => {
    const e = fs.filter((f) => f.kind === kind).map((f) => markElem(f, mark(marks, f)));
    return e.length ? `\t\telements = { ${e.join(', ')} }\n` : '';
  };
  const inSet = (set: string): string => {
    const e = fs.filter((f) => snatSet(f) === set).map((f) => String(mark(marks, f)));
    return `\tset ${set} {\n\t\ttype mark\n${e.length ? `\t\telements = { ${e.join(', ')} }\n` : ''}\t}`;
  };
  // Ingress first, VIP last: a VIP is a local address too (on lo), so a published port equal to a
  // VIP's port would otherwise re-mark the VIP's packets for the ingress service. The VIP rule is
  // the more specific one (address . proto . port) and a lookup miss leaves the mark as it was.
  const markRules = '\t\tfib daddr type local meta mark set meta l4proto . th dport map @ingress-marks\n\t\tmeta mark set ip daddr . meta l4proto . th dport map @vip-marks\n';
  const nft = [
    `table ${T}`,
    `delete table ${T}`,
    `table ${T} {`,
    `\tmap vip-marks {\n\t\ttype ipv4_addr . inet_proto . inet_service : mark\n${els('vip')}\t}`,
    `\tmap ingress-marks {\n\t\ttype inet_proto . inet_service : mark\n${els('ingress')}\t}`,
    inSet('snat-marks'),
    inSet('vip-snat-marks'),
    `\tchain mangle-pre {\n\t\ttype filter hook prerouting priority -150; policy accept;\n${markRules}\t}`,
    `\tchain mangle-out {\n\t\ttype route hook output priority -150; policy accept;\n${markRules}\t}`,
    '\tchain nat-post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tmeta mark @snat-marks masquerade\n\t\tmeta mark @vip-snat-marks fib saddr type local masquerade\n\t}',
    '}',
    '',
  ].join('\n') + renderIpvs6(vip6Addrs(c), marks6Of(c, marks));
  const addrs = [...vipAddrs(c)].sort().map((a) => `address replace ${loAddr(a)} dev lo`).join('\n');
  return { ipvs, nft, addrs: addrs ? addrs + '\n' : '', marks };
}

function weights(f: Frontend): Map<string, number> {
  const m = new Map<string, number>();
  f.targets.forEach((t, i) => m.set(hostPort(t.ip, t.port), f.weights?.[i] ?? 1));
  for (const t of f.draining) m.set(hostPort(t.ip, t.port), 0);
  return m;
}

function parseTarget(s: string): Target {
  const i = s.lastIndexOf(':');
  return { ip: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

/** Only the changed virtual services, real servers, mark elements and VIP addresses. */
export function renderIpvsIncremental(prev: Compiled, next: Compiled, prevMarks: MarkTable): IpvsPlan {
  const marks = assignMarks(prevMarks, next);
  const d = diffCompiled(prev, next);
  const ipvs: string[] = [];
  const nftAdd: string[] = [];
  const nftDel: string[] = [];
  const mapOf = (f: Frontend): string => (f.kind === 'vip' ? 'vip-marks' : 'ingress-marks');
  for (const f of d.removed) {
    if (isV6(f)) {
      ipvs.push(`-D ${ipvsSpec(prevMarks, f)}`);
      continue;
    }
    const m = mark(prevMarks, f);
    ipvs.push(`-D -f ${m}`);
    nftDel.push(`delete element ${T} ${mapOf(f)} { ${elementKey(f)} }`);
    const ds = snatSet(f);
    if (ds) nftDel.push(`delete element ${T} ${ds} { ${m} }`);
  }
  for (const f of d.added) {
    if (isV6(f)) {
      ipvs.push(...serviceLines(ipvsSpec(marks, f), f));
      continue;
    }
    const m = mark(marks, f);
    ipvs.push(...serviceLines(`-f ${m}`, f));
    nftAdd.push(`add element ${T} ${mapOf(f)} { ${markElem(f, m)} }`);
    const as = snatSet(f);
    if (as) nftAdd.push(`add element ${T} ${as} { ${m} }`);
  }
  for (const { before, after } of d.changed) {
    const spec = ipvsSpec(marks, after);
    if (ipvsScheduler(before) !== ipvsScheduler(after)) ipvs.push(`-E ${spec} -s ${ipvsScheduler(after)}`);
    const wb = weights(before);
    const wa = weights(after);
    for (const [k, w] of wa) {
      const old = wb.get(k);
      if (old === undefined) ipvs.push(real(spec, parseTarget(k), w));
      else if (old !== w) ipvs.push(real(spec, parseTarget(k), w, '-e'));
    }
    for (const k of wb.keys()) if (!wa.has(k)) ipvs.push(`-d ${spec} -r ${k}`);
    if (isV6(after)) continue;
    const m = mark(marks, after);
    const sb = snatSet(before);
    const sa = snatSet(after);
    if (sb !== sa) {
      if (sb) nftDel.push(`delete element ${T} ${sb} { ${m} }`);
      if (sa) nftAdd.push(`add element ${T} ${sa} { ${m} }`);
    }
  }
  const a = diffSets(vipAddrs(prev), vipAddrs(next));
  const addrs = [...a.add.sort().map((x) => `address replace ${loAddr(x)} dev lo`), ...a.del.sort().map((x) => `address del ${loAddr(x)} dev lo`)];
  const nft = [...nftAdd, ...nftDel];
  const nft6 = ipvs6Sig(prev, prevMarks) !== ipvs6Sig(next, marks) ? renderIpvs6(vip6Addrs(next), marks6Of(next, marks)) : '';
  return { ipvs: ipvs.length ? ipvs.join('\n') + '\n' : '', nft: (nft.length ? nft.join('\n') + '\n' : '') + nft6, addrs: addrs.length ? addrs.join('\n') + '\n' : '', marks };
}
