/**
 * Reads `nft -j list table ip meshd-lb` (and the IPVS mark table) back into the backend-neutral
 * KernelLbState. Tolerant of what nft prints for protocols (names or numbers) and of absent
 * elements; anything not recognised is ignored rather than guessed.
 */
import type { KernelFrontend } from '../../core/lb/kernel.js';
import { ingress6Key, ingressKey, vipKey, type LbAlgorithm, type Proto, type Target } from '../../core/lb/model.js';
import { ALGO, FRONT_MASK, MASQ_MARK, PICK_MASK } from '../../core/lb/nftables-render.js';

type J = Record<string, unknown>;

function obj(x: unknown): J | undefined {
  return x && typeof x === 'object' && !Array.isArray(x) ? (x as J) : undefined;
}

export function protoOf(x: unknown): Proto | undefined {
  if (x === 'tcp' || x === 6) return 'tcp';
  if (x === 'udp' || x === 17) return 'udp';
  return undefined;
}

interface Listing {
  maps: Map<string, unknown[]>;
  rules: Map<string, J[][]>;
}

/** Splits an `nft -j` document into maps/sets (name → elements) and chains (name → rules' exprs). */
export function indexListing(doc: unknown): Listing {
  const maps = new Map<string, unknown[]>();
  const rules = new Map<string, J[][]>();
  const items = obj(doc)?.nftables;
  if (!Array.isArray(items)) return { maps, rules };
  for (const it of items) {
    const o = obj(it);
    const m = obj(o?.map) ?? obj(o?.set);
    if (m && typeof m.name === 'string') maps.set(m.name, Array.isArray(m.elem) ? m.elem : []);
    const c = obj(o?.chain);
    if (c && typeof c.name === 'string' && !rules.has(c.name)) rules.set(c.name, []);
    const r = obj(o?.rule);
    if (r && typeof r.chain === 'string' && Array.isArray(r.expr)) {
      const list = rules.get(r.chain) ?? [];
      list.push(r.expr as J[]);
      rules.set(r.chain, list);
    }
  }
  return { maps, rules };
}

function concat(x: unknown): unknown[] | undefined {
  const c = obj(x)?.concat;
  return Array.isArray(c) ? c : undefined;
}

/**
 * Slot count and algorithm of a pick chain: its `numgen random|inc mod N vmap @slots` or
 * `jhash ip saddr mod N ... vmap @slots` (what the kernel does, whatever set the frontend sits in).
 */
function chainSlots(exprs: J[][]): { n: number; algorithm: LbAlgorithm } {
  for (const rule of exprs) {
    for (const e of rule) {
      const key = obj(obj(e.vmap)?.key);
      const ng = obj(key?.numgen);
      if (ng && typeof ng.mod === 'number') return { n: ng.mod, algorithm: ng.mode === 'inc' ? 'round-robin' : 'random' };
      const jh = obj(key?.jhash);
      if (jh && typeof jh.mod === 'number') return { n: jh.mod, algorithm: 'source-hash' };
    }
  }
  return { n: 0, algorithm: 'random' };
}

/** A number-keyed map's elements: key → value. */
function numberMap(maps: Map<string, unknown[]>, name: string): Map<number, unknown> {
  const out = new Map<number, unknown>();
  for (const el of maps.get(name) ?? []) {
    if (Array.isArray(el) && typeof el[0] === 'number') out.set(el[0] >>> 0, el[1]);
  }
  return out;
}

function gotoTarget(x: unknown): string | undefined {
  const o = obj(x);
  const g = obj(o?.goto) ?? obj(o?.jump);
  return typeof g?.target === 'string' ? g.target : undefined;
}

/** An element key as listed: the key itself, or `{elem: {val: KEY, comment}}` when commented. */
function elemKey(x: unknown): unknown {
  const e = obj(obj(x)?.elem);
  return e ? e.val : x;
}

/**
 * Frontends from the meshd-lb table listing: `vips`/`ingress` (key → front mark | N) → `pick`
 * (low 16 bits → shared chain) → that chain's `numgen random mod N` → slots 0..N-1 keyed by
 * `front mark | slot` in the targets map (VIP ports by front mark in `vip-ports-PROTO`). What the
 * kernel does, not what the element value claims. `empty-*` sets: no targets.
 */
export function parseNftLb(doc: unknown): KernelFrontend[] {
  const { maps, rules } = indexListing(doc);
  // one pick map per algorithm (`pick`, `pick-rr`, `pick-sh`), keyed by suffix
  const pickChains = new Map<string, Map<number, string>>();
  for (const { suffix } of Object.values(ALGO)) {
    const m = new Map<number, string>();
    for (const el of maps.get(`pick${suffix}`) ?? []) {
      if (!Array.isArray(el) || typeof el[0] !== 'number') continue;
      const chain = gotoTarget(el[1]);
      if (chain) m.set(el[0], chain);
    }
    pickChains.set(suffix, m);
  }
  const tables = new Map<string, Map<number, unknown>>();
  const table = (name: string): Map<number, unknown> => {
    let t = tables.get(name);
    if (!t) tables.set(name, (t = numberMap(maps, name)));
    return t;
  };
  const targetsOf = (kind: 'vip' | 'ingress', proto: Proto, mark: unknown, suffix: string): { targets: Target[]; masquerade: boolean; algorithm?: LbAlgorithm } => {
    if (typeof mark !== 'number') return { targets: [], masquerade: false };
    const chain = pickChains.get(suffix)?.get(mark & PICK_MASK);
    const { n, algorithm } = chain ? chainSlots(rules.get(chain) ?? []) : { n: 0, algorithm: 'random' as const };
    const front = (mark & FRONT_MASK) >>> 0;
    const slots = table(`${kind}-targets-${proto}`);
    const port = kind === 'vip' ? table(`vip-ports-${proto}`).get(front) : undefined;
    const targets: Target[] = [];
    for (let i = 0; i < n; i++) {
      const v = slots.get((front | i) >>> 0);
      const t = kind === 'vip' ? [v, port] : concat(v);
      if (t && typeof t[0] === 'string' && typeof t[1] === 'number') targets.push({ ip: t[0], port: t[1] });
    }
    return { targets, masquerade: (mark & MASQ_MARK) !== 0, ...(algorithm !== 'random' ? { algorithm } : {}) };
  };
  const out: KernelFrontend[] = [];
  const visit = (name: string, kind: 'vip' | 'ingress', empty: boolean, suffix = ''): void => {
    for (const el of maps.get(name) ?? []) {
      const k = concat(elemKey(empty ? el : Array.isArray(el) ? el[0] : undefined));
      if (!k) continue;
      const mark = !empty && Array.isArray(el) ? el[1] : undefined;
      if (kind === 'vip') {
        const proto = protoOf(k[1]);
        if (typeof k[0] !== 'string' || !proto || typeof k[2] !== 'number') continue;
        out.push({ key: vipKey(k[0], proto, k[2]), kind, vip: k[0], proto, port: k[2], ...targetsOf(kind, proto, mark, suffix), draining: [] });
      } else {
        const proto = protoOf(k[0]);
        if (!proto || typeof k[1] !== 'number') continue;
        out.push({ key: ingressKey(proto, k[1]), kind, proto, port: k[1], ...targetsOf(kind, proto, mark, suffix), draining: [] });
      }
    }
  };
  for (const { suffix } of Object.values(ALGO)) {
    visit(`vips${suffix}`, 'vip', false, suffix);
    visit(`ingress${suffix}`, 'ingress', false, suffix);
  }
  visit('empty-vips', 'vip', true);
  visit('empty-ingress', 'ingress', true);
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export interface MarkInfo {
  key: string;
  kind: 'vip' | 'ingress';
  vip?: string;
  proto: Proto;
  port: number;
  masquerade: boolean;
}

/**
 * fwmark → frontend identity, from the meshd-ipvs mark table listing (`family` 'ip'), or from the
 * `ip6 meshd-ipvs6` one (`family` 'ip6': its `ingress-marks` are IPv6 published ports, `ingress6 …`;
 * it has no `vip-marks`, IPv6 VIPs being address services).
 */
export function parseNftMarks(doc: unknown, family: 'ip' | 'ip6' = 'ip'): Map<number, MarkInfo> {
  const { maps } = indexListing(doc);
  const snat = new Set((maps.get('snat-marks') ?? []).filter((x): x is number => typeof x === 'number'));
  const out = new Map<number, MarkInfo>();
  for (const el of maps.get('vip-marks') ?? []) {
    const k = Array.isArray(el) ? concat(el[0]) : undefined;
    const m = Array.isArray(el) ? el[1] : undefined;
    const proto = k ? protoOf(k[1]) : undefined;
    if (!k || !proto || typeof k[0] !== 'string' || typeof k[2] !== 'number' || typeof m !== 'number') continue;
    // VIP marks live in vip-snat-marks (ipvs-render.ts `snatSet`: masqueraded only when locally originated); the
    // model's `masquerade` is the ingress SNAT choice only, so a VIP reads back as `false`.
    out.set(m, { key: vipKey(k[0], proto, k[2]), kind: 'vip', vip: k[0], proto, port: k[2], masquerade: false });
  }
  for (const el of maps.get('ingress-marks') ?? []) {
    const k = Array.isArray(el) ? concat(el[0]) : undefined;
    const m = Array.isArray(el) ? el[1] : undefined;
    const proto = k ? protoOf(k[0]) : undefined;
    if (!k || !proto || typeof k[1] !== 'number' || typeof m !== 'number') continue;
    out.set(m, { key: (family === 'ip6' ? ingress6Key : ingressKey)(proto, k[1]), kind: 'ingress', proto, port: k[1], masquerade: snat.has(m) });
  }
  return out;
}
