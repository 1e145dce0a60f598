/**
 * Reads the IPv6 VIP table `ip6 meshd-lb6` (core/lb/nft6-render.ts) back from `nft -j` into
 * KernelFrontends, and splits one `nft -j list ruleset` into the tables the LB owns.
 *
 * Why `list ruleset`: the drift check and `netctl debug lb` read every namespace back, one exec
 * each; nft lists one table per command (several commands in one `nft -j` invocation print
 * nothing, and a missing table fails the whole invocation), so reading `ip meshd-lb` and
 * `ip6 meshd-lb6` as two tables would double the execs. A task namespace holds a few small tables
 * besides ours (policy), so the ruleset costs little more than our tables, and an absent table is
 * simply absent from it rather than an error to tell apart from others.
 *
 * What the kernel does, not what a name claims: a VIP is a `vips` element whose verdict goes to a
 * chain; its targets are that chain's `dnat ip6 to <pick> map { slot : addr . port }` read in slot
 * order (weighted frontends repeat a target, as `slotsOf`), the algorithm is the pick (`numgen
 * random|inc`, `jhash`). An element of `empty` is a frontend without targets. The routing mesh's
 * IPv6 published ports (`ingress6 PROTO PORT`, in the ingress sandbox) are elements of the map
 * `ingress` (`proto . port : goto fe-N`) or of the set `empty-ingress`; such a chain masquerades when
 * its rule sets the mark bit 0x4000 before the DNAT (`nat-post` masquerades marked packets). Anything
 * not recognised is left out (and then reported as missing by compareKernel), never guessed.
 */
import type { KernelFrontend } from '../../core/lb/kernel.js';
import { NFT6_FAMILY, NFT6_TABLE } from '../../core/lb/nft6-render.js';
import { ingress6Key, vipKey, type LbAlgorithm, type Target } from '../../core/lb/model.js';
import { indexListing, protoOf } from './nft-parse.js';

type J = Record<string, unknown>;

function obj(x: unknown): J | undefined {
  return x && typeof x === 'object' && !Array.isArray(x) ? (x as J) : undefined;
}

/**
 * The items of one table (`family`, `name`) out of an `nft -j list ruleset` (or `list table`)
 * document, as a document of its own: `{ nftables: [...] }`. Items name their table in `table`
 * (sets, maps, chains, rules) or are the table itself (`table.name`).
 */
export function tableOf(doc: unknown, family: string, name: string): { nftables: unknown[] } {
  const items = obj(doc)?.nftables;
  if (!Array.isArray(items)) return { nftables: [] };
  return {
    nftables: items.filter((it) => {
      const o = obj(it);
      if (!o) return false;
      const inner = obj(Object.values(o)[0]);
      if (!inner || inner.family !== family) return false;
      return o.table !== undefined ? inner.name === name : inner.table === name;
    }),
  };
}

/** Slot → target and the algorithm of a fe-N chain's `dnat ip6 to <pick> map { … }`. */
function dnatOf(rules: J[][]): { targets: Target[]; algorithm: LbAlgorithm } | undefined {
  for (const rule of rules) {
    for (const e of rule) {
      const map = obj(obj(obj(e.dnat)?.addr)?.map);
      if (!map) continue;
      const key = obj(map.key);
      const ng = obj(key?.numgen);
      const algorithm: LbAlgorithm | undefined = ng ? (ng.mode === 'inc' ? 'round-robin' : 'random') : obj(key?.jhash) ? 'source-hash' : undefined;
      const n = typeof ng?.mod === 'number' ? ng.mod : typeof obj(key?.jhash)?.mod === 'number' ? (obj(key?.jhash)!.mod as number) : undefined;
      const set = obj(map.data)?.set;
      if (!algorithm || n === undefined || !Array.isArray(set)) return undefined;
      const bySlot = new Map<number, Target>();
      for (const el of set) {
        if (!Array.isArray(el) || typeof el[0] !== 'number') continue;
        const c = obj(el[1])?.concat;
        if (Array.isArray(c) && typeof c[0] === 'string' && typeof c[1] === 'number') bySlot.set(el[0], { ip: c[0], port: c[1] });
      }
      // slots the pick can produce (0..n-1) and the map lacks would leave packets untranslated: drift
      const targets: Target[] = [];
      for (let i = 0; i < n; i++) {
        const t = bySlot.get(i);
        if (t) targets.push(t);
      }
      return { targets, algorithm };
    }
  }
  return undefined;
}

/** An element key as listed: the key itself, or `{elem: {val: KEY, comment}}` when commented. */
function elemVal(x: unknown): unknown {
  const e = obj(obj(x)?.elem);
  return e ? e.val : x;
}

/** Masquerade mark bit (nft6-render.ts MASQ). */
const MASQ_BIT = 0x4000;

/** True when a chain's rule ORs the masquerade bit into the mark (`meta mark set meta mark | 0x4000`). */
function setsMasq(rules: J[][]): boolean {
  return rules.some((rule) => rule.some((e) => {
    const m = obj(e.mangle);
    if (obj(obj(m?.key)?.meta)?.key !== 'mark') return false;
    const or = obj(m?.value)?.['|'];
    return Array.isArray(or) && or.some((x) => typeof x === 'number' && (x & MASQ_BIT) !== 0);
  }));
}

function portOf(x: unknown): { proto: 'tcp' | 'udp'; port: number } | undefined {
  const c = obj(elemVal(x))?.concat;
  if (!Array.isArray(c)) return undefined;
  const proto = protoOf(c[0]);
  if (!proto || typeof c[1] !== 'number') return undefined;
  return { proto, port: c[1] };
}

function vipOf(x: unknown): { vip: string; proto: 'tcp' | 'udp'; port: number } | undefined {
  const c = obj(elemVal(x))?.concat;
  if (!Array.isArray(c)) return undefined;
  const proto = protoOf(c[1]);
  if (typeof c[0] !== 'string' || !proto || typeof c[2] !== 'number') return undefined;
  return { vip: c[0], proto, port: c[2] };
}

/** Frontends of the `ip6 meshd-lb6` table in `doc` (a ruleset or that table's listing), in key order. */
export function parseNft6Lb(doc: unknown): KernelFrontend[] {
  const { maps, rules } = indexListing(tableOf(doc, NFT6_FAMILY, NFT6_TABLE));
  const rules6 = (chain: string): J[][] => rules.get(chain) ?? [];
  const out: KernelFrontend[] = [];
  for (const el of maps.get('vips') ?? []) {
    if (!Array.isArray(el)) continue;
    const v = vipOf(el[0]);
    const g = obj(el[1]);
    const chain = obj(g?.goto) ?? obj(g?.jump);
    if (!v || typeof chain?.target !== 'string') continue;
    const d = dnatOf(rules.get(chain.target) ?? []);
    out.push({
      key: vipKey(v.vip, v.proto, v.port), kind: 'vip', ...v,
      targets: d?.targets ?? [], draining: [], masquerade: false,
      ...(d && d.algorithm !== 'random' ? { algorithm: d.algorithm } : {}),
    });
  }
  for (const el of maps.get('empty') ?? []) {
    const v = vipOf(el);
    if (v) out.push({ key: vipKey(v.vip, v.proto, v.port), kind: 'vip', ...v, targets: [], draining: [], masquerade: false });
  }
  for (const el of maps.get('ingress') ?? []) {
    if (!Array.isArray(el)) continue;
    const p = portOf(el[0]);
    const g = obj(el[1]);
    const chain = obj(g?.goto) ?? obj(g?.jump);
    if (!p || typeof chain?.target !== 'string') continue;
    const rules = rules6(chain.target);
    const d = dnatOf(rules);
    out.push({
      key: ingress6Key(p.proto, p.port), kind: 'ingress', ...p,
      targets: d?.targets ?? [], draining: [], masquerade: setsMasq(rules),
      ...(d && d.algorithm !== 'random' ? { algorithm: d.algorithm } : {}),
    });
  }
  for (const el of maps.get('empty-ingress') ?? []) {
    const p = portOf(el);
    if (p) out.push({ key: ingress6Key(p.proto, p.port), kind: 'ingress', ...p, targets: [], draining: [], masquerade: false });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
