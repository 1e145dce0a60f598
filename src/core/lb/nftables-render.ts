/**
 * Desired (compiled) state → nftables script, in the shape of kube-proxy's nftables proxier, tuned
 * so a full sync costs little per element and an endpoint change costs O(change):
 *
 * - one table `ip meshd-lb` per sandbox (family `ip`: an `inet` table would make every IPv6 packet
 *   walk these hooks for nothing); IPv6 VIPs of dual-stack networks get their own small `ip6` table
 *   (nft6-render.ts), rendered into the same transaction;
 * - every frontend has a 16-bit id (nft-state.ts). Its "front mark" is `id << 16 | flags` (flags:
 *   0x2000 ingress, 0x4000 masquerade, 0x8000 udp);
 * - DATA maps keyed by what the kernel matches — `vips`: `ip daddr . meta l4proto . th dport`,
 *   `ingress`: `meta l4proto . th dport` on local addresses (`fib daddr type local`) — map a live
 *   frontend to its front mark plus its backend count N (N ≤ 4096 in the low 13 bits);
 * - `dispatch` sets the packet mark to that value and looks its low 16 bits (flags | N, the "pick
 *   number") up in the small verdict map `pick`, which jumps to one SHARED chain per pick number in
 *   use (`pick-vip-tcp-3`: `numgen random mod 3 vmap @slots`, then `goto vip-dnat-tcp`). `slots`
 *   jumps to the shared chain `slot-R`, which replaces the low 13 bits of the mark with R: the mark
 *   is now `front mark | R`, a single 32-bit key;
 * - four shared chains `dnat ip to meta mark map @vip-targets-tcp : meta mark & 0xffffe000 map
 *   @vip-ports-tcp` (ingress: `meta mark map @ingress-targets-tcp` → `ip . port`). VIP slots map to
 *   a bare address and the port comes from a per-frontend element;
 * - why single-integer keys: nft 1.0.6 spends about twice the userspace time on an element with a
 *   concatenated key (`ip . port . mark`, the previous shape) as on one with a plain `mark` key;
 *   at 10k services × 10 endpoints that was half of a full sync. Why sized sets: `size` makes the
 *   kernel allocate the hash table once instead of growing it under a 100k-element insert (the
 *   rhashtable slow path was ~15% of nft's CPU); `size` is a cap, see nft-state.ts;
 * - why not one chain per service or `dnat to numgen ... map { ... }`: nft 1.0.6 dumps EVERY chain
 *   of the table into its cache before any element command, and the kernel re-validates every jump
 *   reachable from a base chain whenever a verdict element or a rule with a jump is added — both
 *   O(services) per endpoint change. With data maps and a handful of shared chains (pick chains per
 *   pick number, slot chains up to the largest N), an endpoint change is a few data-map elements;
 * - slots follow the sorted target order; an incremental sync rewrites only slots whose target
 *   changed, plus the frontend's `vips`/`ingress` element when N changes (slot keys do not hold N);
 * - ingress `cluster` front marks carry the masquerade bit 0x4000: `nat-post` masquerades them
 *   (DNAT+SNAT); `local` ones do not (client IP preserved);
 * - the packet mark of a NEW connection's first packet to a VIP / published port is overwritten
 *   (later packets never traverse nat chains). Sandboxes must not rely on marks for that packet;
 * - draining backends are simply left out of the slots: NAT is decided on a flow's first packet, so
 *   established flows to them continue through conntrack;
 * - frontends with no active backend sit in the SETS `empty-vips` / `empty-ingress` instead, checked
 *   for `ct state new` in filter chains at priority -110 (before DNAT at -100) → `reject` (TCP reset
 *   or ICMP port unreachable): a VIP without backends refuses at once instead of timing out;
 * - `vips`/`ingress` element comments carry the service name and port (what `nft list` shows a human).
 *
 * No hairpin SNAT: VIP balancing runs in the client task's own sandbox (output hook), where a task
 * reaching itself through its VIP is plain local delivery; ingress `cluster` already masquerades.
 *
 * A full render deletes and redefines the whole table in ONE transaction (`nft -f -` is atomic),
 * which also removes stale state. An incremental render touches only changed elements, plus pick
 * and slot chains that come into use (or pick chains that fall out of use). Pure: strings in,
 * strings out; golden-tested.
 */
import { diffCompiled, type LbDiff } from './diff.js';
import { isV6, PROTOS, slotsOf, sortedFrontends, type Compiled, type Frontend, type LbAlgorithm } from './model.js';
import { renderNft6 } from './nft6-render.js';
import { freshIds, IdPlanner, setSize, type NftDelta, type NftState } from './nft-state.js';

export const NFT_FAMILY = 'ip';
export const NFT_TABLE = 'meshd-lb';
/** Low bits of the mark: N in a pick number, then the slot R (N ≤ 4096, R < 4096). */
export const SLOT_MASK = 0x1fff;
export const PICK_INGRESS = 0x2000;
/** Packet mark bit asking nat-post to masquerade (same bit kube-proxy uses, in our own netns). */
export const MASQ_MARK = 0x4000;
export const PICK_UDP = 0x8000;
/** The pick number is the low half of the mark; the frontend id is the high half. */
export const PICK_MASK = 0xffff;
export const ID_SHIFT = 16;
/** Front mark = mark without the N/R bits. */
export const FRONT_MASK = 0xffffe000;

type PickId = Pick<Frontend, 'kind' | 'proto' | 'masquerade' | 'algorithm'> & { targets: { length: number }; slots?: { length: number } | undefined };

const T = `${NFT_FAMILY} ${NFT_TABLE}`;
const HEX_MARK = `0x${MASQ_MARK.toString(16)}`;

/** nft prints marks as 8 hex digits; rendering them the same way keeps listings and scripts alike. */
export function hexMark(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}

const HEX = '0123456789abcdef';

/** 4 lowercase hex digits of the low 16 bits of `v` (`hexMark` without toString/padStart). */
function hex4(v: number): string {
  return HEX[(v >>> 12) & 15]! + HEX[(v >>> 8) & 15]! + HEX[(v >>> 4) & 15]! + HEX[v & 15]!;
}

/** Flag bits of a frontend (kind, protocol, masquerade). */
export function flagsOf(f: Pick<Frontend, 'kind' | 'proto' | 'masquerade'>): number {
  return (f.kind === 'ingress' ? PICK_INGRESS : 0) | (f.proto === 'udp' ? PICK_UDP : 0) | (f.masquerade ? MASQ_MARK : 0);
}

/** Number of slots new connections are spread over (targets, or weighted slots). */
function nSlots(f: PickId): number {
  return (f.slots ?? f.targets).length;
}

/**
 * Per algorithm: the suffix of its frontend set and pick map (`vips`, `vips-rr`, `vips-sh`) and the
 * expression that picks a slot. Each algorithm has its own frontend sets and `pick` map, so the
 * 16-bit pick number (flags | N) and the mark layout stay as they were; default renders are
 * unchanged. `numgen inc` counts per pick chain, which frontends with the same pick number share:
 * each frontend still gets an even spread, in round-robin order of the shared counter. `jhash`
 * with a fixed seed maps one client address to the same slot on every node.
 */
export const ALGO: Record<LbAlgorithm, { suffix: string; bits: number; expr: string }> = {
  random: { suffix: '', bits: 0, expr: 'numgen random' },
  'round-robin': { suffix: '-rr', bits: 1, expr: 'numgen inc' },
  'source-hash': { suffix: '-sh', bits: 2, expr: 'jhash ip saddr' },
};
/** jhash seed ("mesh"): fixed, so every node hashes a client alike. */
export const JHASH_SEED = 0x6d657368;

function algoOf(f: Pick<Frontend, 'algorithm'>): (typeof ALGO)[LbAlgorithm] {
  return ALGO[f.algorithm ?? 'random'];
}

/**
 * Which shared pick chain handles a live frontend: flags | N in the low 16 bits (the `pick` map's
 * key), the algorithm above them (identity only, never in a mark).
 */
export function pickValue(f: PickId): number {
  return algoOf(f).bits * 0x10000 + (flagsOf(f) | nSlots(f));
}

/** The `pick` map of an algorithm. */
function pickMap(v: number): string {
  return `pick${Object.values(ALGO).find((a) => a.bits === Math.floor(v / 0x10000))!.suffix}`;
}

/** Mark of a frontend without slot bits: id in the high half, flags. Keys its ports element. */
export function frontMark(f: Pick<Frontend, 'kind' | 'proto' | 'masquerade'>, id: number): number {
  return ((id << ID_SHIFT) | flagsOf(f)) >>> 0;
}

/** The shared chain of a pick number: `pick-vip-tcp-3`, `pick-ing-udp-2-masq`. */
export function pickChain(f: PickId): string {
  return `pick${algoOf(f).suffix}-${f.kind === 'vip' ? 'vip' : 'ing'}-${f.proto}-${nSlots(f)}${f.masquerade ? '-masq' : ''}`;
}

/** Element key in `vips`/`empty-vips` or `ingress`/`empty-ingress`. */
export function elementKey(f: Pick<Frontend, 'kind' | 'vip' | 'proto' | 'port'>): string {
  return f.kind === 'vip' ? `${f.vip ?? ''} . ${f.proto} . ${f.port}` : `${f.proto} . ${f.port}`;
}

function setName(f: Pick<Frontend, 'kind' | 'algorithm'>, empty: boolean): string {
  return (empty ? 'empty-' : '') + (f.kind === 'vip' ? 'vips' : 'ingress') + (empty ? '' : algoOf(f).suffix);
}

/** Slot map of a frontend; also its id pool (ids are unique per slot map). */
export function targetsMap(f: Pick<Frontend, 'kind' | 'proto'>): string {
  return `${f.kind === 'vip' ? 'vip' : 'ingress'}-targets-${f.proto}`;
}

const poolOf = (f: { key: string }): string => targetsMap(f as Frontend);

function dnatChain(f: Pick<Frontend, 'kind' | 'proto'>): string {
  return `${f.kind === 'vip' ? 'vip' : 'ingress'}-dnat-${f.proto}`;
}

/** Key of slot `i` of a frontend in its targets map: the mark after `slot-i`. */
export function slotKey(f: Pick<Frontend, 'kind' | 'proto' | 'masquerade'>, id: number, i: number): string {
  return hexMark(frontMark(f, id) | i);
}

/** VIP slots map to an address (the port comes from `vip-ports-PROTO`); ingress slots to `ip . port`. */
function slotElem(f: Frontend, id: number, i: number): string {
  const t = slotsOf(f)[i];
  if (!t) throw new RangeError(`${f.key}: no slot ${i}`);
  return f.kind === 'vip' ? `${slotKey(f, id, i)} : ${t.ip}` : `${slotKey(f, id, i)} : ${t.ip} . ${t.port}`;
}

/** `vip-ports-PROTO` element of a live VIP frontend: front mark → the tasks' port. */
function portElem(f: Frontend, id: number): string {
  return `${hexMark(frontMark(f, id))} : ${f.targets[0]?.port ?? 0}`;
}

/** The rules of a shared pick chain. */
export function pickRules(f: PickId): string[] {
  const a = algoOf(f);
  const seed = a.bits === ALGO['source-hash'].bits ? ` seed ${hexMark(JHASH_SEED)}` : '';
  return [`${a.expr} mod ${nSlots(f)}${seed} vmap @slots`, `goto ${dnatChain(f)}`];
}

/** The rule of shared slot chain `slot-r`: replace N (or a previous slot) with r. */
export function slotRule(r: number): string {
  return `meta mark set meta mark & ${hexMark(FRONT_MASK)} | ${r}`;
}

/** `vips`/`ingress` element (live frontend) or `empty-*` element (no active target). */
function frontendElem(f: Frontend, id: number): string {
  const c = ` comment "${f.comment}"`;
  return f.targets.length ? `${elementKey(f)}${c} : ${hexMark(frontMark(f, id) | nSlots(f))}` : `${elementKey(f)}${c}`;
}

function elemBlock(elems: readonly string[]): string {
  return elems.length ? `\t\telements = { ${elems.join(',\n\t\t\t     ')} }\n` : '';
}

/** Pick numbers in use → one frontend using each (for its chain's name and rules). */
function picksOf(fs: Iterable<Frontend>): Map<number, Frontend> {
  const out = new Map<number, Frontend>();
  for (const f of fs) if (f.targets.length && !out.has(pickValue(f))) out.set(pickValue(f), f);
  return out;
}

function pickElem(f: Frontend): string {
  return `${hexMark(pickValue(f) & PICK_MASK)} : goto ${pickChain(f)}`;
}

function slotsElem(r: number): string {
  return `${r} : jump slot-${r}`;
}

/** Sets and maps that hold per-frontend or per-slot elements: declared with a `size`. */
export const SIZED_SETS = ['vips', 'empty-vips', 'ingress', 'empty-ingress', 'vips-rr', 'vips-sh', 'ingress-rr', 'ingress-sh', ...PROTOS.flatMap((p) => [`vip-targets-${p}`, `vip-ports-${p}`, `ingress-targets-${p}`])];

const VIP_TYPE = 'ipv4_addr . inet_proto . inet_service';
const ING_TYPE = 'inet_proto . inet_service';

function setDecl(kind: 'map' | 'set', name: string, type: string, elems: readonly string[], size: number): string {
  return `\t${kind} ${name} {\n\t\ttype ${type}\n\t\tsize ${size}\n${elemBlock(elems)}\t}`;
}

/** The dispatch rules of one algorithm's sets (a missed map lookup ends the rule). */
function dispatchRules(x: string): string {
  const m = hexMark(PICK_MASK);
  return `\t\tmeta mark set ip daddr . meta l4proto . th dport map @vips${x} meta mark & ${m} vmap @pick${x}\n\t\tfib daddr type local meta mark set meta l4proto . th dport map @ingress${x} meta mark & ${m} vmap @pick${x}\n`;
}

export interface NftFullPlan {
  script: string;
  state: NftState;
}

/**
 * Full sync: one atomic transaction that deletes and redefines the table (stale state of removed
 * services disappears with it). The leading `table` line makes the delete valid on first apply.
 * Returns the state to keep for incremental syncs.
 */
export function planNftFull(c: Compiled): NftFullPlan {
  const sorted = sortedFrontends(c);
  // IPv6 VIP frontends live in their own table (nft6-render.ts), appended to this transaction.
  const fs = sorted.filter((f) => !isV6(f));
  const v6 = sorted.filter(isV6);
  const { ids, next } = freshIds(fs, poolOf);
  const picks = [...picksOf(fs)].sort((a, b) => a[0] - b[0]).map(([, f]) => f);
  const el: Record<string, string[]> = Object.fromEntries(SIZED_SETS.map((s) => [s, []]));
  let maxN = 0;
  for (const f of fs) {
    const id = ids.get(f.key)!;
    const n = nSlots(f);
    el[setName(f, n === 0)]!.push(frontendElem(f, id));
    if (n === 0) continue;
    if (n > maxN) maxN = n;
    if (f.kind === 'vip') el[`vip-ports-${f.proto}`]!.push(portElem(f, id));
    const s = el[targetsMap(f)]!;
    // the bulk of a full sync (100k slots at 10k services × 10): hex digits built by hand
    const fm = frontMark(f, id);
    const pre = `0x${hex4(fm >>> 16)}`;
    const lo = fm & 0xffff;
    const ts = slotsOf(f);
    if (f.kind === 'vip') for (let i = 0; i < n; i++) s.push(`${pre}${hex4(lo | i)} : ${ts[i]!.ip}`);
    else for (let i = 0; i < n; i++) s.push(`${pre}${hex4(lo | i)} : ${ts[i]!.ip} . ${ts[i]!.port}`);
  }
  const counts = new Map(SIZED_SETS.map((s) => [s, el[s]!.length]));
  const sizes = new Map(SIZED_SETS.map((s) => [s, setSize(el[s]!.length)]));
  const decl = (kind: 'map' | 'set', name: string, type: string): string => setDecl(kind, name, type, el[name]!, sizes.get(name)!);
  const slotIdx = Array.from({ length: maxN }, (_, r) => r);
  const body = [
    decl('map', 'vips', `${VIP_TYPE} : mark`),
    decl('set', 'empty-vips', VIP_TYPE),
    decl('map', 'ingress', `${ING_TYPE} : mark`),
    decl('set', 'empty-ingress', ING_TYPE),
    decl('map', 'vips-rr', `${VIP_TYPE} : mark`),
    decl('map', 'vips-sh', `${VIP_TYPE} : mark`),
    decl('map', 'ingress-rr', `${ING_TYPE} : mark`),
    decl('map', 'ingress-sh', `${ING_TYPE} : mark`),
    ...Object.values(ALGO).map((al) => `\tmap pick${al.suffix} {\n\t\ttype mark : verdict\n${elemBlock(picks.filter((f) => algoOf(f) === al).map(pickElem))}\t}`),
    `\tmap slots {\n\t\ttypeof numgen random mod 2 : verdict\n${elemBlock(slotIdx.map(slotsElem))}\t}`,
    ...PROTOS.flatMap((p) => [
      decl('map', `vip-targets-${p}`, 'mark : ipv4_addr'),
      decl('map', `vip-ports-${p}`, 'mark : inet_service'),
      decl('map', `ingress-targets-${p}`, 'mark : ipv4_addr . inet_service'),
    ]),
    ...PROTOS.flatMap((p) => [
      `\tchain vip-dnat-${p} {\n\t\tmeta l4proto ${p} dnat ip to meta mark map @vip-targets-${p} : meta mark & ${hexMark(FRONT_MASK)} map @vip-ports-${p}\n\t}`,
      `\tchain ingress-dnat-${p} {\n\t\tmeta l4proto ${p} dnat ip to meta mark map @ingress-targets-${p}\n\t}`,
    ]),
    '\tchain reject-empty {\n\t\tmeta l4proto tcp reject with tcp reset\n\t\treject\n\t}',
    '\tchain empty-check {\n\t\tip daddr . meta l4proto . th dport @empty-vips goto reject-empty\n\t\tfib daddr type local meta l4proto . th dport @empty-ingress goto reject-empty\n\t}',
    '\tchain filter-pre {\n\t\ttype filter hook prerouting priority -110; policy accept;\n\t\tct state new jump empty-check\n\t}',
    '\tchain filter-out {\n\t\ttype filter hook output priority -110; policy accept;\n\t\tct state new jump empty-check\n\t}',
    // a missed `map` lookup ends the rule, so the vmap only ever sees a pick number we set
    `\tchain dispatch {\n${Object.values(ALGO).map((al) => dispatchRules(al.suffix)).join('')}\t}`,
    '\tchain nat-pre {\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tjump dispatch\n\t}',
    '\tchain nat-out {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump dispatch\n\t}',
    `\tchain nat-post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tmeta mark & ${HEX_MARK} == ${HEX_MARK} masquerade\n\t}`,
    ...slotIdx.map((r) => `\tchain slot-${r} {\n\t\t${slotRule(r)}\n\t}`),
    ...picks.map((f) => `\tchain ${pickChain(f)} {\n${pickRules(f).map((r) => `\t\t${r}\n`).join('')}\t}`),
  ];
  const script = [`table ${T}`, `delete table ${T}`, `table ${T} {`, ...body, '}', ''].join('\n') + renderNft6(v6);
  return { script, state: { ids, next, free: new Map(), slotChains: maxN, counts, sizes, picks: pickUse(fs) } };
}

export function renderNftFull(c: Compiled): string {
  return planNftFull(c).script;
}

/** `delete table` for Dataplane.flush (with the leading `table` so it never fails). */
export function renderNftFlush(): string {
  return `table ${T}\ndelete table ${T}\n${renderNft6([])}`;
}

/** Live frontends (with targets) per pick number (nft-state.ts keeps it from then on). */
function pickUse(fs: readonly Frontend[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const f of fs) if (f.targets.length) m.set(pickValue(f), (m.get(pickValue(f)) ?? 0) + 1);
  return m;
}

export interface NftIncrementalPlan {
  script: string;
  delta: NftDelta;
}

/**
 * Incremental sync from `prev` (what was last applied successfully, with its `state`) to `next`.
 * Returns null when a sized set would overflow its declared size (the caller does a full sync).
 * `script` is '' when nothing changed. Order inside the transaction: new slot chains, new pick
 * chains and their `pick` elements, element deletes, element adds (a replaced element is deleted
 * then re-added), then pick elements and chains no longer used (a chain must lose its map
 * reference before it can go). Whether a pick number is still used elsewhere is a use count kept
 * in `state` (O(1), not a scan of `prev`/`next`). Slot chains are never removed incrementally (a full sync trims).
 */
export function planNftIncremental(prev: Compiled, next: Compiled, state: NftState, diffIn: LbDiff = diffCompiled(prev, next)): NftIncrementalPlan | null {
  // IPv6 VIP frontends: any change of one re-renders the (small) IPv6 table from `next`, in this
  // same transaction; the IPv4 machinery below sees only IPv4 frontends.
  const v6Changed = diffIn.added.some(isV6) || diffIn.removed.some(isV6) || diffIn.changed.some((c) => isV6(c.after));
  const diff: LbDiff = v6Changed ? { added: diffIn.added.filter((f) => !isV6(f)), removed: diffIn.removed.filter((f) => !isV6(f)), changed: diffIn.changed.filter((c) => !isV6(c.after)) } : diffIn;
  const v6Script = v6Changed ? renderNft6(sortedFrontends(next).filter(isV6)) : '';
  const ids = new IdPlanner(state);
  const adds: string[] = [];
  const dels: string[] = [];
  const gained = new Map<number, Frontend>();
  const lost = new Map<number, Frontend>();
  const add = (set: string, elems: string[]): void => {
    if (!elems.length) return;
    adds.push(`add element ${T} ${set} { ${elems.join(', ')} }`);
    ids.count(set, elems.length);
  };
  const del = (set: string, keys: string[]): void => {
    if (!keys.length) return;
    dels.push(`delete element ${T} ${set} { ${keys.join(', ')} }`);
    ids.count(set, -keys.length);
  };
  const addSlots = (f: Frontend, id: number, idx: number[]): void => add(targetsMap(f), idx.map((i) => slotElem(f, id, i)));
  const delSlots = (f: Frontend, id: number, idx: number[]): void => del(targetsMap(f), idx.map((i) => slotKey(f, id, i)));
  const all = (f: Frontend): number[] => slotsOf(f).map((_, i) => i);
  const addElem = (f: Frontend, id: number): void => {
    add(setName(f, f.targets.length === 0), [frontendElem(f, id)]);
    if (f.targets.length) (gained.set(pickValue(f), f), ids.pick(pickValue(f), 1));
  };
  const delElem = (f: Frontend): void => {
    del(setName(f, f.targets.length === 0), [elementKey(f)]);
    if (f.targets.length) (lost.set(pickValue(f), f), ids.pick(pickValue(f), -1));
  };
  const portOf = (f: Frontend): number | undefined => (f.kind === 'vip' ? f.targets[0]?.port : undefined);
  const ports = (f: Frontend): string => `vip-ports-${f.proto}`;
  for (const f of diff.added) {
    const id = ids.assign(f.key, poolOf(f));
    addElem(f, id);
    addSlots(f, id, all(f));
    if (portOf(f) !== undefined) add(ports(f), [portElem(f, id)]);
  }
  for (const { before, after } of diff.changed) {
    const id = ids.id(before.key);
    const nb = nSlots(before);
    const na = nSlots(after);
    const pb = portOf(before);
    const pa = portOf(after);
    if (pb !== pa) {
      if (pb !== undefined) del(ports(before), [hexMark(frontMark(before, id))]);
      if (pa !== undefined) add(ports(after), [portElem(after, id)]);
    }
    const elemChanged = nb !== na || before.masquerade !== after.masquerade || before.comment !== after.comment || before.algorithm !== after.algorithm;
    if (elemChanged) {
      delElem(before);
      addElem(after, id);
    }
    if (nb === 0 || na === 0 || before.masquerade !== after.masquerade) {
      // slot keys carry the masquerade bit: re-key every slot
      delSlots(before, id, all(before));
      addSlots(after, id, all(after));
      continue;
    }
    const replaced: number[] = [];
    for (let i = 0; i < Math.min(nb, na); i++) {
      const x = slotsOf(before)[i]!;
      const y = slotsOf(after)[i]!;
      if (x.ip !== y.ip || (x.port !== y.port && after.kind !== 'vip')) replaced.push(i);
    }
    const grown = Array.from({ length: Math.max(0, na - nb) }, (_, k) => nb + k);
    const shrunk = Array.from({ length: Math.max(0, nb - na) }, (_, k) => na + k);
    delSlots(before, id, [...replaced, ...shrunk]);
    addSlots(after, id, [...replaced, ...grown]);
  }
  for (const f of diff.removed) {
    const id = ids.id(f.key);
    delElem(f);
    delSlots(f, id, all(f));
    if (portOf(f) !== undefined) del(ports(f), [hexMark(frontMark(f, id))]);
    ids.release(f.key, poolOf(f));
  }
  if (!ids.fits()) return null;
  const head: string[] = [];
  const tail: string[] = [];
  for (const [v, f] of [...gained].sort((a, b) => a[0] - b[0])) {
    if (lost.has(v) || ids.pickUsers(v) > 0) continue;
    const n = nSlots(f);
    if (n > ids.delta.slotChains) {
      const rs = Array.from({ length: n - ids.delta.slotChains }, (_, k) => ids.delta.slotChains + k);
      for (const r of rs) head.push(`add chain ${T} slot-${r}`, `add rule ${T} slot-${r} ${slotRule(r)}`);
      head.push(`add element ${T} slots { ${rs.map(slotsElem).join(', ')} }`);
      ids.delta.slotChains = n;
    }
  }
  for (const [v, f] of [...gained].sort((a, b) => a[0] - b[0])) {
    if (lost.has(v) || ids.pickUsers(v) > 0) continue;
    head.push(`add chain ${T} ${pickChain(f)}`, ...pickRules(f).map((r) => `add rule ${T} ${pickChain(f)} ${r}`), `add element ${T} ${pickMap(v)} { ${pickElem(f)} }`);
  }
  for (const [v, f] of [...lost].sort((a, b) => a[0] - b[0])) {
    if (gained.has(v) || ids.pickUsersAfter(v) > 0) continue;
    tail.push(`delete element ${T} ${pickMap(v)} { ${hexMark(v & PICK_MASK)} }`, `flush chain ${T} ${pickChain(f)}`, `delete chain ${T} ${pickChain(f)}`);
  }
  const lines = [...head, ...dels, ...adds, ...tail];
  return { script: (lines.length ? lines.join('\n') + '\n' : '') + v6Script, delta: ids.delta };
}

/**
 * The incremental script from `prev` to `next`, assuming the kernel holds what a full sync of
 * `prev` made (tests and one-off tools; the syncer keeps the real state). Throws when a sized set
 * would overflow.
 */
export function renderNftIncremental(prev: Compiled, next: Compiled, diff: LbDiff = diffCompiled(prev, next), state: NftState = planNftFull(prev).state): string {
  const p = planNftIncremental(prev, next, state, diff);
  if (!p) throw new RangeError('nft: incremental sync would overflow a sized set; a full sync is needed');
  return p.script;
}
