/**
 * Desired (compiled) state → nftables script, in the shape of kube-proxy's nftables proxier:
 *
 * - one table `ip meshd-lb` per sandbox (family `ip`: overlay addressing is IPv4 only, and an `inet`
 *   table would make every IPv6 packet walk these hooks for nothing);
 * - verdict maps keyed by what the kernel matches — `vips`: `ip daddr . meta l4proto . th dport`,
 *   `ingress`: `meta l4proto . th dport` on local addresses (`fib daddr type local`) — jumping to one
 *   chain per frontend, so a service change rewrites one chain and never walks the others;
 * - each frontend chain is a single rule `dnat to numgen random mod N map { i : ip . port }`
 *   (uniform choice among ACTIVE backends). Draining backends are simply left out: NAT is decided on
 *   a flow's first packet, so established flows to them continue through conntrack;
 * - frontends with no active backend sit in `empty-vips` / `empty-ingress` instead, checked for
 *   `ct state new` in filter chains at priority dstnat-10 (before DNAT) → `reject` (TCP reset or ICMP
 *   port unreachable): a VIP without backends refuses at once instead of timing out;
 * - ingress `cluster` chains set mark 0x4000 and `nat-post` masquerades marked packets (DNAT+SNAT);
 *   `local` chains do not (client IP preserved). The `hairpin` set masquerades a task reaching
 *   itself through its own VIP (saddr == daddr after DNAT), otherwise the reply would bypass NAT.
 *
 * A full render deletes and redefines the whole table in ONE transaction (`nft -f -` is atomic),
 * which also removes stale chains. An incremental render touches only changed chains and elements.
 * Pure: strings in, strings out; golden-tested.
 */
import { diffCompiled, diffSets, type LbDiff } from './diff.js';
import type { Compiled, Frontend } from './model.js';

export const NFT_FAMILY = 'ip';
export const NFT_TABLE = 'meshd-lb';
/** Packet mark bit asking nat-post to masquerade (same bit kube-proxy uses, in our own netns). */
export const MASQ_MARK = 0x4000;

const T = `${NFT_FAMILY} ${NFT_TABLE}`;

/** Readable and unique by construction (the key is unique): `vip-10.9.0.10-tcp-80`, `ing-tcp-8080`. */
export function chainName(f: Pick<Frontend, 'kind' | 'vip' | 'proto' | 'port'>): string {
  return f.kind === 'vip' ? `vip-${f.vip ?? ''}-${f.proto}-${f.port}` : `ing-${f.proto}-${f.port}`;
}

/** Element key in `vips`/`empty-vips` or `ingress`/`empty-ingress`. */
export function elementKey(f: Pick<Frontend, 'kind' | 'vip' | 'proto' | 'port'>): string {
  return f.kind === 'vip' ? `${f.vip ?? ''} . ${f.proto} . ${f.port}` : `${f.proto} . ${f.port}`;
}

function mapName(f: Frontend, empty: boolean): string {
  return (empty ? 'empty-' : '') + (f.kind === 'vip' ? 'vips' : 'ingress');
}

/** The rules of a frontend's chain (only called when it has at least one active target). */
export function frontendRules(f: Frontend): string[] {
  const rules: string[] = [];
  if (f.masquerade) rules.push(`meta mark set meta mark | 0x${MASQ_MARK.toString(16)}`);
  const elems = f.targets.map((t, i) => `${i} : ${t.ip} . ${t.port}`).join(', ');
  rules.push(`meta l4proto ${f.proto} dnat to numgen random mod ${f.targets.length} map { ${elems} } comment "${f.comment}"`);
  return rules;
}

/** Addresses of VIP targets; a task connecting to its own VIP must be masqueraded (hairpin). */
export function hairpinSet(c: Compiled): Set<string> {
  const s = new Set<string>();
  for (const f of c.values()) if (f.kind === 'vip') for (const t of f.targets) s.add(`${t.ip} . ${t.ip}`);
  return s;
}

function sorted(xs: Iterable<string>): string[] {
  return [...xs].sort();
}

function elemBlock(elems: string[]): string {
  return elems.length ? `\t\telements = { ${elems.join(',\n\t\t\t     ')} }\n` : '';
}

/** Static skeleton: hooks, maps, reject chain. Frontend chains and elements come after. */
function skeleton(c: Compiled): string {
  const fs = [...c.values()];
  const el = (kind: Frontend['kind'], empty: boolean): string[] =>
    fs.filter((f) => f.kind === kind && (f.targets.length === 0) === empty).map((f) => empty ? `${elementKey(f)} : goto reject-empty` : `${elementKey(f)} : goto ${chainName(f)}`);
  const vipType = 'type ipv4_addr . inet_proto . inet_service : verdict';
  const ingType = 'type inet_proto . inet_service : verdict';
  return [
    `\tmap vips {\n\t\t${vipType}\n${elemBlock(el('vip', false))}\t}`,
    `\tmap empty-vips {\n\t\t${vipType}\n${elemBlock(el('vip', true))}\t}`,
    `\tmap ingress {\n\t\t${ingType}\n${elemBlock(el('ingress', false))}\t}`,
    `\tmap empty-ingress {\n\t\t${ingType}\n${elemBlock(el('ingress', true))}\t}`,
    `\tset hairpin {\n\t\ttype ipv4_addr . ipv4_addr\n${elemBlock(sorted(hairpinSet(c)))}\t}`,
    '\tchain reject-empty {\n\t\tmeta l4proto tcp reject with tcp reset\n\t\treject\n\t}',
    '\tchain empty-check {\n\t\tip daddr . meta l4proto . th dport vmap @empty-vips\n\t\tfib daddr type local meta l4proto . th dport vmap @empty-ingress\n\t}',
    '\tchain filter-pre {\n\t\ttype filter hook prerouting priority -110; policy accept;\n\t\tct state new jump empty-check\n\t}',
    '\tchain filter-out {\n\t\ttype filter hook output priority -110; policy accept;\n\t\tct state new jump empty-check\n\t}',
    '\tchain dispatch {\n\t\tip daddr . meta l4proto . th dport vmap @vips\n\t\tfib daddr type local meta l4proto . th dport vmap @ingress\n\t}',
    '\tchain nat-pre {\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tjump dispatch\n\t}',
    '\tchain nat-out {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump dispatch\n\t}',
    `\tchain nat-post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tmeta mark & 0x${MASQ_MARK.toString(16)} == 0x${MASQ_MARK.toString(16)} masquerade\n\t\tip saddr . ip daddr @hairpin masquerade\n\t}`,
  ].join('\n');
}

/**
 * Full sync: one atomic transaction that deletes and redefines the table (stale chains of removed
 * services disappear with it). The leading `table` line makes the delete valid on first apply.
 */
export function renderNftFull(c: Compiled): string {
  const chains = [...c.values()].filter((f) => f.targets.length > 0).map((f) => `\tchain ${chainName(f)} {\n${frontendRules(f).map((r) => `\t\t${r}\n`).join('')}\t}`);
  return [`table ${T}`, `delete table ${T}`, `table ${T} {`, skeleton(c), ...chains, '}', ''].join('\n');
}

/** `delete table` for Dataplane.flush (with the leading `table` so it never fails). */
export function renderNftFlush(): string {
  return `table ${T}\ndelete table ${T}\n`;
}

/**
 * Incremental sync from `prev` (what was last applied successfully) to `next`. Returns '' when
 * nothing changed. Order inside the transaction: create/rewrite chains, add elements, delete
 * elements, delete chains (a chain must lose its map reference before it can go).
 */
export function renderNftIncremental(prev: Compiled, next: Compiled, diff: LbDiff = diffCompiled(prev, next)): string {
  const chains: string[] = [];
  const adds: string[] = [];
  const dels: string[] = [];
  const chainDels: string[] = [];
  const defineChain = (f: Frontend, existed: boolean): void => {
    const n = chainName(f);
    chains.push(existed ? `flush chain ${T} ${n}` : `add chain ${T} ${n}`);
    for (const r of frontendRules(f)) chains.push(`add rule ${T} ${n} ${r}`);
  };
  const addElem = (f: Frontend): void => {
    const empty = f.targets.length === 0;
    adds.push(`add element ${T} ${mapName(f, empty)} { ${elementKey(f)} : goto ${empty ? 'reject-empty' : chainName(f)} }`);
  };
  const delElem = (f: Frontend): void => {
    dels.push(`delete element ${T} ${mapName(f, f.targets.length === 0)} { ${elementKey(f)} }`);
  };
  for (const f of diff.added) {
    if (f.targets.length) defineChain(f, false);
    addElem(f);
  }
  for (const { before, after } of diff.changed) {
    const wasEmpty = before.targets.length === 0;
    const isEmpty = after.targets.length === 0;
    if (!isEmpty) defineChain(after, !wasEmpty);
    if (wasEmpty !== isEmpty) {
      delElem(before);
      addElem(after);
      if (isEmpty) chainDels.push(`flush chain ${T} ${chainName(before)}`, `delete chain ${T} ${chainName(before)}`);
    }
  }
  for (const f of diff.removed) {
    delElem(f);
    if (f.targets.length) chainDels.push(`flush chain ${T} ${chainName(f)}`, `delete chain ${T} ${chainName(f)}`);
  }
  const hp = diffSets(hairpinSet(prev), hairpinSet(next));
  if (hp.add.length) adds.push(`add element ${T} hairpin { ${sorted(hp.add).join(', ')} }`);
  if (hp.del.length) dels.push(`delete element ${T} hairpin { ${sorted(hp.del).join(', ')} }`);
  const lines = [...chains, ...adds, ...dels, ...chainDels];
  return lines.length ? lines.join('\n') + '\n' : '';
}
