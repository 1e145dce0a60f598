/**
 * Reads `nft -j list table ip meshd-lb` (and the IPVS mark table) back into the backend-neutral
 * KernelLbState. Tolerant of what nft prints for protocols (names or numbers) and of absent
 * elements; anything not recognised is ignored rather than guessed.
 */
import type { KernelFrontend } from '../../core/lb/kernel.js';
import { ingressKey, vipKey, type Proto, type Target } from '../../core/lb/model.js';
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

/** Targets of `dnat to numgen random mod N map { i : ip . port }` rules in a chain. */
function chainTargets(exprs: J[][]): { targets: Target[]; masquerade: boolean } {
  const targets: Target[] = [];
  let masquerade = false;
  for (const rule of exprs) {
    for (const e of rule) {
      const mangle = obj(e.mangle);
      if (mangle && obj(obj(mangle.key)?.meta)?.key === 'mark') {
        const v = obj(mangle.value)?.['|'];
        if (Array.isArray(v) && v.includes(MASQ_MARK)) masquerade = true;
      }
      const dnat = obj(e.dnat);
      const set = obj(obj(dnat?.addr)?.map)?.data;
      const elems = obj(set)?.set;
      if (Array.isArray(elems)) {
        for (const pair of elems) {
          const c = Array.isArray(pair) ? concat(pair[1]) : undefined;
          if (c && typeof c[0] === 'string' && typeof c[1] === 'number') targets.push({ ip: c[0], port: c[1] });
        }
      }
    }
  }
  return { targets, masquerade };
}

function gotoTarget(x: unknown): string | undefined {
  const o = obj(x);
  const g = obj(o?.goto) ?? obj(o?.jump);
  return typeof g?.target === 'string' ? g.target : undefined;
}

/** Frontends from the meshd-lb table listing. */
export function parseNftLb(doc: unknown): KernelFrontend[] {
  const { maps, rules } = indexListing(doc);
  const out: KernelFrontend[] = [];
  const visit = (name: string, kind: 'vip' | 'ingress', empty: boolean): void => {
    for (const el of maps.get(name) ?? []) {
      if (!Array.isArray(el)) continue;
      const k = concat(el[0]);
      if (!k) continue;
      const chain = gotoTarget(el[1]);
      const { targets, masquerade } = !empty && chain ? chainTargets(rules.get(chain) ?? []) : { targets: [], masquerade: false };
      if (kind === 'vip') {
        const proto = protoOf(k[1]);
        if (typeof k[0] !== 'string' || !proto || typeof k[2] !== 'number') continue;
        out.push({ key: vipKey(k[0], proto, k[2]), kind, vip: k[0], proto, port: k[2], targets, draining: [], masquerade });
      } else {
        const proto = protoOf(k[0]);
        if (!proto || typeof k[1] !== 'number') continue;
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
    out.set(m, { key: vipKey(k[0], proto, k[2]), kind: 'vip', vip: k[0], proto, port: k[2], masquerade: snat.has(m) });
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
