/**
 * Reads `nft -j list table ip meshd-lb` (and the IPVS mark table) back into the backend-neutral
 * KernelLbState. Tolerant of what nft prints for protocols (names or numbers) and of absent
 * elements; anything not recognised is ignored rather than guessed.
 */
import type { KernelFrontend } from '../../core/lb/kernel.js';
import { ingressKey, PROTOS, vipKey, type Proto, type Target } from '../../core/lb/model.js';
import { MASQ_MARK } from '../../core/lb/nftables-render.js';

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

/** Slot count and first slot (`meta mark set numgen random mod N offset B`) of a pick chain. */
function chainInfo(exprs: J[][]): { slots: number; base: number } {
  for (const rule of exprs) {
    for (const e of rule) {
      const mangle = obj(e.mangle);
      if (!mangle || obj(obj(mangle.key)?.meta)?.key !== 'mark') continue;
      const ng = obj(obj(mangle.value)?.numgen);
      if (ng && typeof ng.mod === 'number') return { slots: ng.mod, base: typeof ng.offset === 'number' ? ng.offset : 0 };
    }
  }
  return { slots: 0, base: 0 };
}

/**
 * `vip-targets-PROTO` / `ingress-targets-PROTO` elements → frontend element key
 * ("10.9.0.10 . tcp . 80" / "tcp . 8080") → slot → target.
 */
function slotTable(maps: Map<string, unknown[]>): Map<string, Map<number, Target>> {
  const out = new Map<string, Map<number, Target>>();
  for (const kind of ['vip', 'ingress'] as const) {
    for (const proto of PROTOS) {
      // VIP slots hold a bare address; the port is per frontend in vip-ports-PROTO
      const ports = new Map<string, number>();
      for (const el of maps.get(`vip-ports-${proto}`) ?? []) {
        if (!Array.isArray(el)) continue;
        const k = concat(elemKey(el[0]));
        const port: unknown = el[1];
        if (k && k.length === 2 && typeof port === 'number') ports.set(`${String(k[0])} . ${String(k[1])}`, port);
      }
      for (const el of maps.get(`${kind}-targets-${proto}`) ?? []) {
        if (!Array.isArray(el)) continue;
        const k = concat(elemKey(el[0]));
        const keyLen = kind === 'vip' ? 2 : 1;
        const v = typeof el[1] === 'string' && k ? [el[1], ports.get(`${String(k[0])} . ${String(k[1])}`)] : concat(el[1]);
        if (!k || !v || k.length !== keyLen + 1 || typeof v[0] !== 'string' || typeof v[1] !== 'number') continue;
        const slot = k[keyLen];
        if (typeof slot !== 'number') continue;
        const fk = kind === 'vip' ? `${String(k[0])} . ${proto} . ${String(k[1])}` : `${proto} . ${String(k[0])}`;
        const m = out.get(fk) ?? new Map<number, Target>();
        m.set(slot, { ip: v[0], port: v[1] });
        out.set(fk, m);
      }
    }
  }
  return out;
}

function pickSlots(table: Map<string, Map<number, Target>>, key: string, n: number, base: number): Target[] {
  const m = table.get(key);
  const out: Target[] = [];
  for (let i = 0; i < n; i++) {
    const t = m?.get(base + i);
    if (t) out.push(t);
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
 * Frontends from the meshd-lb table listing: `vips`/`ingress` (key → pick number) → `pick`
 * (pick number → shared chain) → that chain's `numgen mod N offset B` → slots B..B+N-1 of the
 * targets map. What the kernel does, not what the pick number claims. `empty-*` sets: no targets.
 */
export function parseNftLb(doc: unknown): KernelFrontend[] {
  const { maps, rules } = indexListing(doc);
  const slots = slotTable(maps);
  const pickChains = new Map<number, string>();
  for (const el of maps.get('pick') ?? []) {
    if (!Array.isArray(el) || typeof el[0] !== 'number') continue;
    const chain = gotoTarget(el[1]);
    if (chain) pickChains.set(el[0], chain);
  }
  const out: KernelFrontend[] = [];
  const visit = (name: string, kind: 'vip' | 'ingress', empty: boolean): void => {
    for (const el of maps.get(name) ?? []) {
      const k = concat(elemKey(empty ? el : Array.isArray(el) ? el[0] : undefined));
      if (!k) continue;
      const pick = !empty && Array.isArray(el) ? el[1] : undefined;
      const chain = typeof pick === 'number' ? pickChains.get(pick) : undefined;
      const info = chain ? chainInfo(rules.get(chain) ?? []) : { slots: 0, base: 0 };
      const masquerade = (info.base & MASQ_MARK) !== 0;
      if (kind === 'vip') {
        const proto = protoOf(k[1]);
        if (typeof k[0] !== 'string' || !proto || typeof k[2] !== 'number') continue;
        const targets = pickSlots(slots, `${k[0]} . ${proto} . ${k[2]}`, info.slots, info.base);
        out.push({ key: vipKey(k[0], proto, k[2]), kind, vip: k[0], proto, port: k[2], targets, draining: [], masquerade });
      } else {
        const proto = protoOf(k[0]);
        if (!proto || typeof k[1] !== 'number') continue;
        const targets = pickSlots(slots, `${proto} . ${k[1]}`, info.slots, info.base);
        out.push({ key: ingressKey(proto, k[1]), kind, proto, port: k[1], targets, draining: [], masquerade });
      }
    }
  };
  visit('vips', 'vip', false);
  visit('empty-vips', 'vip', true);
  visit('ingress', 'ingress', false);
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

/** fwmark → frontend identity, from the meshd-ipvs mark table listing. */
export function parseNftMarks(doc: unknown): Map<number, MarkInfo> {
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
    out.set(m, { key: ingressKey(proto, k[1]), kind: 'ingress', proto, port: k[1], masquerade: snat.has(m) });
  }
  return out;
}
