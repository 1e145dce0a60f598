/**
 * Desired-vs-actual views for `netctl debug fdb [--network N]` and `netctl debug sandbox`:
 * one row per entry with its drift state, so an operator sees at a glance what the next
 * reconcile would repair. Pure; the CLI formats the rows.
 */
import type { NodeState, Sandbox } from './model.js';
import { ipKey } from './desired.js';

export type DriftState = 'ok' | 'missing' | 'extra' | 'wrong';

export interface FdbRow {
  sandbox: string;
  network: string;
  ip: string | null;
  mac: string;
  /** Desired remote underlay address (null for an extra entry). */
  want: string | null;
  /** Actual remote underlay address (null when missing). */
  have: string | null;
  /** FDB (MAC → underlay) and neighbour (IP → MAC) drift, separately. */
  fdb: DriftState;
  neigh: DriftState;
  /** Dual-stack networks: the endpoint's IPv6 neighbour (same MAC) and its drift; absent otherwise. */
  ip6?: string;
  neigh6?: DriftState;
}

const state = (want: string | null | undefined, have: string | null | undefined): DriftState =>
  want == null ? (have == null ? 'ok' : 'extra') : have == null ? 'missing' : want === have ? 'ok' : 'wrong';

/** Rows for every FDB/neighbour entry desired or present, sorted by sandbox then IP/MAC. */
export function fdbRows(desired: NodeState, actual: NodeState, networkId?: string): FdbRow[] {
  const act = new Map(actual.sandboxes.map((s) => [s.ns, s]));
  const des = new Map(desired.sandboxes.map((s) => [s.ns, s]));
  const rows: FdbRow[] = [];
  for (const ns of [...new Set([...des.keys(), ...act.keys()])].sort()) {
    const d: Sandbox | undefined = des.get(ns);
    const a: Sandbox | undefined = act.get(ns);
    const network = d?.network ?? '';
    if (networkId !== undefined && network !== networkId) continue;
    const dF = new Map((d?.fdb ?? []).map((f) => [f.mac, f.dst]));
    const aF = new Map((a?.fdb ?? []).map((f) => [f.mac, f.dst]));
    // One MAC carries an IPv4 and (dual stack) an IPv6 neighbour: one map per family.
    const byMac = (list: readonly { ip: string; mac: string }[] | undefined, v6: boolean) =>
      new Map((list ?? []).filter((n) => n.ip.includes(':') === v6).map((n) => [n.mac, n.ip]));
    const dN = byMac(d?.neigh, false);
    const aN = byMac(a?.neigh, false);
    const dN6 = byMac(d?.neigh, true);
    const aN6 = byMac(a?.neigh, true);
    for (const mac of new Set([...dF.keys(), ...aF.keys(), ...dN.keys(), ...aN.keys(), ...dN6.keys(), ...aN6.keys()])) {
      const ip6 = dN6.get(mac) ?? aN6.get(mac);
      rows.push({
        sandbox: ns, network, mac, ip: dN.get(mac) ?? aN.get(mac) ?? null,
        want: dF.get(mac) ?? null, have: aF.get(mac) ?? null,
        fdb: state(dF.get(mac), aF.get(mac)), neigh: state(dN.get(mac), aN.get(mac)),
        ...(ip6 !== undefined ? { ip6, neigh6: state(dN6.get(mac), aN6.get(mac)) } : {}),
      });
    }
  }
  return rows.sort((x, y) => (x.sandbox !== y.sandbox ? (x.sandbox < y.sandbox ? -1 : 1)
    : (x.ip ? ipKey(x.ip) : 'z' + x.mac) < (y.ip ? ipKey(y.ip) : 'z' + y.mac) ? -1 : 1));
}

export interface SandboxRow {
  sandbox: string;
  network: string;
  /** 'ok' | 'missing' (wanted, absent) | 'extra' (present, unwanted) | 'wrong' (links differ). */
  state: DriftState;
  /** Human-readable differences, e.g. "vxlan mtu 1500 ≠ 1450". */
  details: string[];
  fdbEntries: number;
  neighEntries: number;
  /** Overlay MTU the sandbox should have (its bridge's), null when not desired here. */
  mtu: number | null;
}

/** One row per sandbox namespace with link-level drift spelled out. */
export function sandboxRows(desired: NodeState, actual: NodeState): SandboxRow[] {
  const act = new Map(actual.sandboxes.map((s) => [s.ns, s]));
  const des = new Map(desired.sandboxes.map((s) => [s.ns, s]));
  const out: SandboxRow[] = [];
  for (const ns of [...new Set([...des.keys(), ...act.keys()])].sort()) {
    const d = des.get(ns);
    const a = act.get(ns);
    const details: string[] = [];
    if (d && a) {
      if (!a.bridge) details.push('bridge missing');
      else if (d.bridge) {
        if (a.bridge.mtu !== d.bridge.mtu) details.push(`bridge mtu ${a.bridge.mtu} ≠ ${d.bridge.mtu}`);
        if (!a.bridge.up) details.push('bridge down');
        if (a.bridge.addrs.join(',') !== d.bridge.addrs.join(',')) details.push(`bridge addrs [${a.bridge.addrs.join(' ')}] ≠ [${d.bridge.addrs.join(' ')}]`);
      }
      if (!a.vxlan) details.push('vxlan missing');
      else if (d.vxlan) {
        for (const k of ['name', 'vni', 'port', 'local', 'learning', 'proxy', 'mtu', 'master', 'up'] as const) {
          if (a.vxlan[k] !== d.vxlan[k]) details.push(`vxlan ${k} ${String(a.vxlan[k])} ≠ ${String(d.vxlan[k])}`);
        }
      }
      for (const p of a.ports ?? []) if (d.bridge && p.mtu !== d.bridge.mtu) details.push(`port ${p.name} mtu ${p.mtu} ≠ ${d.bridge.mtu}`);
    }
    out.push({
      sandbox: ns, network: d?.network ?? '',
      state: !a ? 'missing' : !d ? 'extra' : details.length ? 'wrong' : 'ok',
      details, fdbEntries: a?.fdb.length ?? 0, neighEntries: a?.neigh.length ?? 0, mtu: d?.bridge?.mtu ?? null,
    });
  }
  return out;
}
