/**
 * IPv6 VIP frontends (issue #19 item 2 part 2) → their own nftables table `ip6 meshd-lb6`, sent in
 * the SAME `nft -f -` transaction as the IPv4 table's script (nftables-render.ts appends it), so a
 * change of both families is still one atomic kernel transaction.
 *
 * Why a table of its own and a simpler shape than the IPv4 one: the IPv4 table's data maps are
 * typed `ipv4_addr` and carry the kube-proxy-style O(change) machinery for 10k services; IPv6 VIPs
 * exist only on networks created with `--ipv6`, so this table stays small, and an `ip` table never
 * sees IPv6 packets (nor this one IPv4 packets). Each live frontend is one element of the verdict
 * map `vips` (`VIP . proto . port : goto fe-N`) and one chain `fe-N` holding a single rule
 * `dnat ip6 to <pick> map { slot : addr . port, … }` — pick = `numgen random` / `numgen inc`
 * (round-robin) / `jhash ip6 saddr … seed` (source-hash, the IPv4 table's seed), weighted frontends
 * list their slots (model.ts `slotsOf`). A frontend with no active target is an element of the set
 * `empty` and gets refused at once (TCP reset / ICMPv6 port unreachable), as on IPv4.
 *
 * Every render redefines the whole table (`table` + `delete table` first, so it also removes a
 * table whose last frontend went): O(IPv6 frontends), and only when one of them changed. A render
 * with no IPv6 frontend is just the delete. Pure; golden-tested.
 */
import { slotsOf, type Frontend, type LbAlgorithm } from './model.js';

export const NFT6_FAMILY = 'ip6';
export const NFT6_TABLE = 'meshd-lb6';
const T = `${NFT6_FAMILY} ${NFT6_TABLE}`;
/** Same seed as the IPv4 table's source-hash (nftables-render.ts JHASH_SEED), spelled as nft prints it. */
const SEED = '0x6d657368';
/** Masquerade mark bit (the IPv4 table's MASQ_MARK): ingress `cluster` IPv6 connections. */
const MASQ = '0x4000';

const PICK: Record<LbAlgorithm, (n: number) => string> = {
  random: (n) => `numgen random mod ${n}`,
  'round-robin': (n) => `numgen inc mod ${n}`,
  'source-hash': (n) => `jhash ip6 saddr mod ${n} seed ${SEED}`,
};

function elemKey(f: Frontend): string {
  return `${f.vip ?? ''} . ${f.proto} . ${f.port}`;
}

function block(elems: readonly string[]): string {
  return elems.length ? `\t\telements = { ${elems.join(',\n\t\t\t     ')} }\n` : '';
}

/** The DNAT rule of one live frontend (slots in order: weighted ones repeat a target). */
export function dnat6Rule(f: Frontend): string {
  const slots = slotsOf(f);
  const map = slots.map((t, i) => `${i} : ${t.ip} . ${t.port}`).join(', ');
  return `meta l4proto ${f.proto} dnat ip6 to ${PICK[f.algorithm ?? 'random'](slots.length)} map { ${map} }`;
}

/**
 * The IPv6 table for `fs` (IPv6 frontends, in key order), preceded by its delete. Chains are
 * numbered in that order; nothing refers to a chain number from outside the table.
 *
 * Ingress IPv6 frontends (`ingress6 …`, the routing mesh's sandbox; issue 19 §2 published ports)
 * add, only when there is one (a table without any renders exactly as before): the verdict map
 * `ingress` (`proto . port : goto fe-N`) and the set `empty-ingress`, matched on any local address
 * (`fib daddr type local`, as the IPv4 table); `cluster` chains set the mark bit 0x4000 before
 * their DNAT and `nat-post` masquerades it (the IPv4 table's `nat-post` never sees IPv6 packets).
 */
export function renderNft6(fs: readonly Frontend[]): string {
  const head = `table ${T}\ndelete table ${T}\n`;
  if (fs.length === 0) return head;
  const vipFs = fs.filter((f) => f.kind === 'vip');
  const ingFs = fs.filter((f) => f.kind === 'ingress');
  const live = [...vipFs.filter((f) => f.targets.length > 0), ...ingFs.filter((f) => f.targets.length > 0)];
  const chainOf = new Map(live.map((f, i) => [f, i]));
  const empty = vipFs.filter((f) => f.targets.length === 0).map((f) => `${elemKey(f)} comment "${f.comment}"`);
  const vips = vipFs.filter((f) => f.targets.length > 0).map((f) => `${elemKey(f)} comment "${f.comment}" : goto fe-${chainOf.get(f)!}`);
  const match = 'ip6 daddr . meta l4proto . th dport';
  const imatch = 'fib daddr type local meta l4proto . th dport';
  const ing = ingFs.length > 0;
  const masq = ingFs.some((f) => f.masquerade && f.targets.length > 0);
  const iEmpty = ingFs.filter((f) => f.targets.length === 0).map((f) => `${f.proto} . ${f.port} comment "${f.comment}"`);
  const iLive = ingFs.filter((f) => f.targets.length > 0).map((f) => `${f.proto} . ${f.port} comment "${f.comment}" : goto fe-${chainOf.get(f)!}`);
  const feRule = (f: Frontend): string => (f.masquerade ? `meta mark set meta mark | ${MASQ} ${dnat6Rule(f)}` : dnat6Rule(f));
  const body = [
    `\tset empty {\n\t\ttype ipv6_addr . inet_proto . inet_service\n${block(empty)}\t}`,
    `\tmap vips {\n\t\ttype ipv6_addr . inet_proto . inet_service : verdict\n${block(vips)}\t}`,
    ...(ing ? [
      `\tset empty-ingress {\n\t\ttype inet_proto . inet_service\n${block(iEmpty)}\t}`,
      `\tmap ingress {\n\t\ttype inet_proto . inet_service : verdict\n${block(iLive)}\t}`,
    ] : []),
    ...live.map((f, i) => `\tchain fe-${i} {\n\t\t${feRule(f)}\n\t}`),
    `\tchain empty-check {\n\t\t${match} @empty meta l4proto tcp reject with tcp reset\n\t\t${match} @empty reject\n${ing ? `\t\t${imatch} @empty-ingress meta l4proto tcp reject with tcp reset\n\t\t${imatch} @empty-ingress reject\n` : ''}\t}`,
    '\tchain filter-pre {\n\t\ttype filter hook prerouting priority -110; policy accept;\n\t\tct state new jump empty-check\n\t}',
    '\tchain filter-out {\n\t\ttype filter hook output priority -110; policy accept;\n\t\tct state new jump empty-check\n\t}',
    `\tchain nat-pre {\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\t${match} vmap @vips\n${ing ? `\t\t${imatch} vmap @ingress\n` : ''}\t}`,
    `\tchain nat-out {\n\t\ttype nat hook output priority -100; policy accept;\n\t\t${match} vmap @vips\n${ing ? `\t\t${imatch} vmap @ingress\n` : ''}\t}`,
    ...(masq ? [`\tchain nat-post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tmeta mark & ${MASQ} == ${MASQ} masquerade\n\t}`] : []),
  ];
  return `${head}table ${T} {\n${body.join('\n')}\n}\n`;
}
