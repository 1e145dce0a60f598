/**
 * Desired (compiled) state → nftables script, in the shape of kube-proxy's nftables proxier, tuned
 * so a sync costs time linear in what it sends, and an endpoint change costs O(change):
 *
 * - one table `ip meshd-lb` per sandbox (family `ip`: overlay addressing is IPv4 only, and an `inet`
 *   table would make every IPv6 packet walk these hooks for nothing);
 * - DATA maps keyed by what the kernel matches — `vips`: `ip daddr . meta l4proto . th dport`,
 *   `ingress`: `meta l4proto . th dport` on local addresses (`fib daddr type local`) — whose value
 *   is a "pick" number: kind, protocol, masquerade bit and backend count N (`pickValue`);
 * - `dispatch` sets the packet mark to that number and looks it up in the small verdict map `pick`,
 *   which jumps to one SHARED chain per pick number in use (`pick-vip-tcp-3`: `meta mark set numgen
 *   random mod 3 goto vip-dnat-tcp`), which picks a slot 0..N-1; four shared chains then `dnat ip
 *   to ip daddr . tcp dport . meta mark map @vip-targets-tcp : ip daddr . tcp dport map
 *   @vip-ports-tcp` (ingress: `tcp dport . meta mark` → `ip . port`). VIP slots map to a bare
 *   address and the port comes from a per-frontend element: a concatenated value per slot cost nft
 *   1.0.6 a quarter of its parse time on a 100k-slot full sync;
 * - why not one chain per service (the previous shape) or `dnat to numgen ... map { ... }`: nft 1.0.6
 *   dumps EVERY chain of the table into its cache before any element command, and the kernel
 *   re-validates every jump reachable from a base chain whenever a verdict element or a rule with
 *   a jump is added — both O(services) per endpoint change (10k services: ~70 ms). With data maps
 *   and a handful of shared chains, an endpoint change is a few data-map elements: no verdict,
 *   nothing to re-validate, a tiny cache. Anonymous sets per service are worse still (anonymous
 *   set name allocation scans all sets);
 * - slots follow the sorted target order; an incremental sync rewrites only slots whose target
 *   changed, plus the frontend's `vips`/`ingress` element when N changes;
 * - ingress `cluster` slots are numbered from 0x4000 (`numgen ... offset 16384`): the same mark bit
 *   tells `nat-post` to masquerade (DNAT+SNAT); `local` slots start at 0 (client IP preserved);
 * - the packet mark of a NEW connection's first packet to a VIP / published port is overwritten
 *   (later packets never traverse nat chains). Sandboxes must not rely on marks for that packet;
 * - draining backends are simply left out of the slots: NAT is decided on a flow's first packet, so
 *   established flows to them continue through conntrack;
 * - frontends with no active backend sit in the SETS `empty-vips` / `empty-ingress` instead, checked
 *   for `ct state new` in filter chains at priority -110 (before DNAT at -100) → `reject` (TCP reset
 *   or ICMP port unreachable): a VIP without backends refuses at once instead of timing out;
 * - element comments carry the service name and port (what `nft list` shows a human).
 *
 * No hairpin SNAT: VIP balancing runs in the client task's own sandbox (output hook), where a task
 * reaching itself through its VIP is plain local delivery; ingress `cluster` already masquerades.
 *
 * A full render deletes and redefines the whole table in ONE transaction (`nft -f -` is atomic),
 * which also removes stale state. An incremental render touches only changed elements, plus pick
 * chains that come into use or fall out of use. Pure: strings in, strings out; golden-tested.
 */
import { diffCompiled, type LbDiff } from './diff.js';
import { PROTOS, sortedFrontends, type Compiled, type Frontend } from './model.js';

export const NFT_FAMILY = 'ip';
export const NFT_TABLE = 'meshd-lb';
/** Packet mark bit asking nat-post to masquerade (same bit kube-proxy uses, in our own netns). */
export const MASQ_MARK = 0x4000;
/** Slots per frontend must stay below the masquerade bit. */
export const MAX_SLOTS = MASQ_MARK;
/** Pick-number bits (above the slot and masquerade bits). */
export const PICK_UDP = 0x10000;
export const PICK_INGRESS = 0x20000;

type FrontendId = Pick<Frontend, 'kind' | 'vip' | 'proto' | 'port'>;
type PickId = Pick<Frontend, 'kind' | 'proto' | 'masquerade'> & { targets: { length: number } };

/** First slot number of a frontend: cluster-ingress slots carry the masquerade bit. */
export function slotBase(f: Pick<Frontend, 'masquerade'>): number {
  return f.masquerade ? MASQ_MARK : 0;
}

const T = `${NFT_FAMILY} ${NFT_TABLE}`;
const HEX_MARK = `0x${MASQ_MARK.toString(16)}`;

/**
 * The value of a live frontend's `vips`/`ingress` element: which shared pick chain handles it.
 * Bits: 0x20000 ingress, 0x10000 udp, 0x4000 masquerade, low bits N (1..4096).
 */
export function pickValue(f: PickId): number {
  return (f.kind === 'ingress' ? PICK_INGRESS : 0) | (f.proto === 'udp' ? PICK_UDP : 0) | slotBase(f) | f.targets.length;
}

/** nft prints marks as 8 hex digits; rendering them the same way keeps listings and scripts alike. */
export function hexMark(v: number): string {
  return `0x${v.toString(16).padStart(8, '0')}`;
}

/** The shared chain of a pick number: `pick-vip-tcp-3`, `pick-ing-udp-2-masq`. */
export function pickChain(f: PickId): string {
  return `pick-${f.kind === 'vip' ? 'vip' : 'ing'}-${f.proto}-${f.targets.length}${f.masquerade ? '-masq' : ''}`;
}

/** Element key in `vips`/`empty-vips` or `ingress`/`empty-ingress`. */
export function elementKey(f: FrontendId): string {
  return f.kind === 'vip' ? `${f.vip ?? ''} . ${f.proto} . ${f.port}` : `${f.proto} . ${f.port}`;
}

function setName(f: Pick<Frontend, 'kind'>, empty: boolean): string {
  return (empty ? 'empty-' : '') + (f.kind === 'vip' ? 'vips' : 'ingress');
}

/**
 * Slot maps (and their dnat chains) are per protocol: nft 1.0.6 cannot add a rule that uses a
 * `typeof ... th dport` map once that map exists in the kernel ("conflicting protocols
 * specified"), so each map is typed with `tcp dport` or `udp dport`.
 */
export function targetsMap(f: Pick<Frontend, 'kind' | 'proto'>): string {
  return `${f.kind === 'vip' ? 'vip' : 'ingress'}-targets-${f.proto}`;
}

function dnatChain(f: Pick<Frontend, 'kind' | 'proto'>): string {
  return `${f.kind === 'vip' ? 'vip' : 'ingress'}-dnat-${f.proto}`;
}

/** Key of slot `i` of a frontend in its targets map: `10.9.0.10 . 80 . 0` or `8080 . 16384`. */
export function slotKey(f: Pick<Frontend, 'kind' | 'vip' | 'proto' | 'port' | 'masquerade'>, i: number): string {
  const slot = slotBase(f) + i;
  return f.kind === 'vip' ? `${f.vip ?? ''} . ${f.port} . ${slot}` : `${f.port} . ${slot}`;
}

/** VIP slots map to an address (the port comes from `vip-ports-PROTO`); ingress slots to `ip . port`. */
function slotElem(f: Frontend, i: number): string {
  const t = f.targets[i];
  if (!t) throw new RangeError(`${f.key}: no slot ${i}`);
  return f.kind === 'vip' ? `${slotKey(f, i)} : ${t.ip}` : `${slotKey(f, i)} : ${t.ip} . ${t.port}`;
}

/** `vip-ports-PROTO` element of a live VIP frontend: VIP . port → the tasks' port. */
function portElem(f: Frontend): string {
  return `${f.vip ?? ''} . ${f.port} : ${f.targets[0]?.port ?? 0}`;
}

/** The one rule of a shared pick chain. */
export function pickRule(f: PickId): string {
  const off = slotBase(f) ? ` offset ${slotBase(f)}` : '';
  return `meta mark set numgen random mod ${f.targets.length}${off} goto ${dnatChain(f)}`;
}

/** `vips`/`ingress` element (live frontend) or `empty-*` element (no active target). */
function frontendElem(f: Frontend): string {
  const c = ` comment "${f.comment}"`;
  return f.targets.length ? `${elementKey(f)}${c} : ${hexMark(pickValue(f))}` : `${elementKey(f)}${c}`;
}

function elemBlock(elems: readonly string[]): string {
  return elems.length ? `\t\telements = { ${elems.join(',\n\t\t\t     ')} }\n` : '';
}

/** Pick numbers in use → one frontend using each (for its chain's name and rule). */
function picksOf(fs: Iterable<Frontend>): Map<number, Frontend> {
  const out = new Map<number, Frontend>();
  for (const f of fs) if (f.targets.length && !out.has(pickValue(f))) out.set(pickValue(f), f);
  return out;
}

function pickElem(f: Frontend): string {
  return `${hexMark(pickValue(f))} : goto ${pickChain(f)}`;
}

/** Static skeleton with elements; pick chains come after. */
function skeleton(fs: readonly Frontend[], picks: readonly Frontend[]): string {
  const vips: string[] = [];
  const emptyVips: string[] = [];
  const ing: string[] = [];
  const emptyIng: string[] = [];
  const slots: Record<string, string[]> = { 'vip-targets-tcp': [], 'vip-targets-udp': [], 'ingress-targets-tcp': [], 'ingress-targets-udp': [] };
  const ports: Record<string, string[]> = { tcp: [], udp: [] };
  for (const f of fs) {
    const live = f.targets.length > 0;
    (f.kind === 'vip' ? (live ? vips : emptyVips) : live ? ing : emptyIng).push(frontendElem(f));
    if (!live) continue;
    if (f.kind === 'vip') ports[f.proto]!.push(portElem(f));
    const s = slots[targetsMap(f)]!;
    for (let i = 0; i < f.targets.length; i++) s.push(slotElem(f, i));
  }
  const vipType = 'ipv4_addr . inet_proto . inet_service';
  const ingType = 'inet_proto . inet_service';
  return [
    `\tmap vips {\n\t\ttype ${vipType} : mark\n${elemBlock(vips)}\t}`,
    `\tset empty-vips {\n\t\ttype ${vipType}\n${elemBlock(emptyVips)}\t}`,
    `\tmap ingress {\n\t\ttype ${ingType} : mark\n${elemBlock(ing)}\t}`,
    `\tset empty-ingress {\n\t\ttype ${ingType}\n${elemBlock(emptyIng)}\t}`,
    `\tmap pick {\n\t\ttype mark : verdict\n${elemBlock(picks.map(pickElem))}\t}`,
    ...PROTOS.flatMap((p) => [
      `\tmap vip-targets-${p} {\n\t\ttypeof ip daddr . ${p} dport . meta mark : ip daddr\n${elemBlock(slots[`vip-targets-${p}`]!)}\t}`,
      `\tmap vip-ports-${p} {\n\t\ttypeof ip daddr . ${p} dport : ${p} dport\n${elemBlock(ports[p]!)}\t}`,
      `\tmap ingress-targets-${p} {\n\t\ttypeof ${p} dport . meta mark : ip daddr . ${p} dport\n${elemBlock(slots[`ingress-targets-${p}`]!)}\t}`,
    ]),
    ...PROTOS.flatMap((p) => [
      `\tchain vip-dnat-${p} {\n\t\tmeta l4proto ${p} dnat ip to ip daddr . ${p} dport . meta mark map @vip-targets-${p} : ip daddr . ${p} dport map @vip-ports-${p}\n\t}`,
      `\tchain ingress-dnat-${p} {\n\t\tmeta l4proto ${p} dnat to ${p} dport . meta mark map @ingress-targets-${p}\n\t}`,
    ]),
    '\tchain reject-empty {\n\t\tmeta l4proto tcp reject with tcp reset\n\t\treject\n\t}',
    '\tchain empty-check {\n\t\tip daddr . meta l4proto . th dport @empty-vips goto reject-empty\n\t\tfib daddr type local meta l4proto . th dport @empty-ingress goto reject-empty\n\t}',
    '\tchain filter-pre {\n\t\ttype filter hook prerouting priority -110; policy accept;\n\t\tct state new jump empty-check\n\t}',
    '\tchain filter-out {\n\t\ttype filter hook output priority -110; policy accept;\n\t\tct state new jump empty-check\n\t}',
    // a missed `map` lookup ends the rule, so the vmap only ever sees a pick number we set
    '\tchain dispatch {\n\t\tmeta mark set ip daddr . meta l4proto . th dport map @vips meta mark vmap @pick\n\t\tfib daddr type local meta mark set meta l4proto . th dport map @ingress meta mark vmap @pick\n\t}',
    '\tchain nat-pre {\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tjump dispatch\n\t}',
    '\tchain nat-out {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump dispatch\n\t}',
    `\tchain nat-post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tmeta mark & ${HEX_MARK} == ${HEX_MARK} masquerade\n\t}`,
  ].join('\n');
}

/**
 * Full sync: one atomic transaction that deletes and redefines the table (stale state of removed
 * services disappears with it). The leading `table` line makes the delete valid on first apply.
 */
export function renderNftFull(c: Compiled): string {
  const fs = sortedFrontends(c);
  const picks = [...picksOf(fs)].sort((a, b) => a[0] - b[0]).map(([, f]) => f);
  const chains = picks.map((f) => `\tchain ${pickChain(f)} {\n\t\t${pickRule(f)}\n\t}`);
  return [`table ${T}`, `delete table ${T}`, `table ${T} {`, skeleton(fs, picks), ...chains, '}', ''].join('\n');
}

/** `delete table` for Dataplane.flush (with the leading `table` so it never fails). */
export function renderNftFlush(): string {
  return `table ${T}\ndelete table ${T}\n`;
}

function usesPick(c: Compiled, v: number): boolean {
  for (const f of c.values()) if (f.targets.length && pickValue(f) === v) return true;
  return false;
}

/**
 * Incremental sync from `prev` (what was last applied successfully) to `next`. Returns '' when
 * nothing changed. Order inside the transaction: new pick chains and their `pick` elements,
 * element deletes, element adds (a replaced element is deleted then re-added), then pick elements
 * and chains no longer used (a chain must lose its map reference before it can go). Whether a pick
 * number is still used elsewhere is checked only for pick numbers this diff touches.
 */
export function renderNftIncremental(prev: Compiled, next: Compiled, diff: LbDiff = diffCompiled(prev, next)): string {
  const adds: string[] = [];
  const dels: string[] = [];
  const gained = new Map<number, Frontend>();
  const lost = new Map<number, Frontend>();
  const addSlots = (f: Frontend, idx: number[]): void => {
    if (idx.length) adds.push(`add element ${T} ${targetsMap(f)} { ${idx.map((i) => slotElem(f, i)).join(', ')} }`);
  };
  const delSlots = (f: Frontend, idx: number[]): void => {
    if (idx.length) dels.push(`delete element ${T} ${targetsMap(f)} { ${idx.map((i) => slotKey(f, i)).join(', ')} }`);
  };
  const all = (f: Frontend): number[] => f.targets.map((_, i) => i);
  const addElem = (f: Frontend): void => {
    adds.push(`add element ${T} ${setName(f, f.targets.length === 0)} { ${frontendElem(f)} }`);
    if (f.targets.length) gained.set(pickValue(f), f);
  };
  const delElem = (f: Frontend): void => {
    dels.push(`delete element ${T} ${setName(f, f.targets.length === 0)} { ${elementKey(f)} }`);
    if (f.targets.length) lost.set(pickValue(f), f);
  };
  const portOf = (f: Frontend): number | undefined => (f.kind === 'vip' ? f.targets[0]?.port : undefined);
  for (const f of diff.added) {
    addElem(f);
    addSlots(f, all(f));
    if (portOf(f) !== undefined) adds.push(`add element ${T} vip-ports-${f.proto} { ${portElem(f)} }`);
  }
  for (const { before, after } of diff.changed) {
    const nb = before.targets.length;
    const na = after.targets.length;
    const pb = portOf(before);
    const pa = portOf(after);
    if (pb !== pa) {
      if (pb !== undefined) dels.push(`delete element ${T} vip-ports-${before.proto} { ${before.vip ?? ''} . ${before.port} }`);
      if (pa !== undefined) adds.push(`add element ${T} vip-ports-${after.proto} { ${portElem(after)} }`);
    }
    const elemChanged = nb !== na || before.masquerade !== after.masquerade || before.comment !== after.comment;
    if (elemChanged) {
      delElem(before);
      addElem(after);
    }
    if (nb === 0 || na === 0 || before.masquerade !== after.masquerade) {
      // slot numbers carry the masquerade bit: re-key every slot
      delSlots(before, all(before));
      addSlots(after, all(after));
      continue;
    }
    const replaced: number[] = [];
    for (let i = 0; i < Math.min(nb, na); i++) {
      const x = before.targets[i]!;
      const y = after.targets[i]!;
      if (x.ip !== y.ip || (x.port !== y.port && after.kind !== 'vip')) replaced.push(i);
    }
    const grown = Array.from({ length: Math.max(0, na - nb) }, (_, k) => nb + k);
    const shrunk = Array.from({ length: Math.max(0, nb - na) }, (_, k) => na + k);
    delSlots(before, [...replaced, ...shrunk]);
    addSlots(after, [...replaced, ...grown]);
  }
  for (const f of diff.removed) {
    delElem(f);
    delSlots(f, all(f));
    if (portOf(f) !== undefined) dels.push(`delete element ${T} vip-ports-${f.proto} { ${f.vip ?? ''} . ${f.port} }`);
  }
  const head: string[] = [];
  const tail: string[] = [];
  for (const [v, f] of [...gained].sort((a, b) => a[0] - b[0])) {
    if (lost.has(v) || usesPick(prev, v)) continue;
    head.push(`add chain ${T} ${pickChain(f)}`, `add rule ${T} ${pickChain(f)} ${pickRule(f)}`, `add element ${T} pick { ${pickElem(f)} }`);
  }
  for (const [v, f] of [...lost].sort((a, b) => a[0] - b[0])) {
    if (gained.has(v) || usesPick(next, v)) continue;
    tail.push(`delete element ${T} pick { ${hexMark(v)} }`, `flush chain ${T} ${pickChain(f)}`, `delete chain ${T} ${pickChain(f)}`);
  }
  const lines = [...head, ...dels, ...adds, ...tail];
  return lines.length ? lines.join('\n') + '\n' : '';
}
