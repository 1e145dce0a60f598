/**
 * What the kernel holds after a batch of ENTRY operations (neighbour and FDB entries in existing sandboxes),
 * computed instead of read back. Why: under endpoint churn every remote endpoint change is one reconcile, and
 * reading a node's overlay back costs 1 + 3 × sandboxes + 1 processes (`ip netns list`, `ip addr`, `ip neigh`,
 * `bridge fdb` per sandbox, host links) — twice per reconcile before this. A CPU profile of a 10-node lab agent
 * at 100 changes/s spent a fifth of its busy time spawning those processes. An entry operation that the kernel
 * accepted (`ip -batch` / `bridge -batch` exit 0) has exactly one outcome, so the state after it is known; the
 * reconciler still reads the kernel on every resync, retry, manual reconcile and structural change (sandboxes,
 * links, addresses, ports — whose kernel-side details this model does not own).
 *
 * Returns null when any operation is not an entry operation or names a sandbox or device the state does not
 * hold: the caller then reads the kernel back.
 */
import { ipKey } from './desired.js';
import type { Op } from './diff.js';
import type { NodeState, Sandbox } from './model.js';

const byMac = (a: { mac: string }, b: { mac: string }): number => (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0);
function sortByIp<T extends { ip: string }>(xs: readonly T[]): T[] {
  return xs.map((x) => [ipKey(x.ip), x] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, x]) => x);
}

/** `neigh replace IP lladdr MAC dev DEV nud permanent` | `neigh del IP dev DEV` (diff.ts's exact lines). */
function neighOp(line: string): { del: boolean; ip: string; mac: string; dev: string } | null {
  const w = line.split(' ');
  if (w[0] !== 'neigh') return null;
  if (w[1] === 'del' && w.length === 5 && w[3] === 'dev') return { del: true, ip: w[2]!, mac: '', dev: w[4]! };
  if (w[1] === 'replace' && w.length === 9 && w[3] === 'lladdr' && w[5] === 'dev' && w[7] === 'nud' && w[8] === 'permanent') {
    return { del: false, ip: w[2]!, mac: w[4]!, dev: w[6]! };
  }
  return null;
}

/** `fdb replace MAC dev DEV dst IP self permanent` | `fdb del MAC dev DEV dst IP self`. */
function fdbOp(line: string): { del: boolean; mac: string; dst: string; dev: string } | null {
  const w = line.split(' ');
  if (w[0] !== 'fdb' || w[3] !== 'dev' || w[5] !== 'dst' || w[7] !== 'self') return null;
  if (w[1] === 'del' && w.length === 8) return { del: true, mac: w[2]!, dst: w[6]!, dev: w[4]! };
  if (w[1] === 'replace' && w.length === 9 && w[8] === 'permanent') return { del: false, mac: w[2]!, dst: w[6]!, dev: w[4]! };
  return null;
}

export function applyEntryOps(state: NodeState, ops: readonly Op[]): NodeState | null {
  const touched = new Map<string, Sandbox>();
  const sandbox = (ns: string | null, dev: string): Sandbox | null => {
    if (ns === null) return null;
    let s = touched.get(ns);
    if (!s) {
      const orig = state.sandboxes.find((x) => x.ns === ns);
      if (!orig) return null;
      s = { ...orig, fdb: [...orig.fdb], neigh: [...orig.neigh] };
      touched.set(ns, s);
    }
    return s.vxlan?.name === dev ? s : null;
  };
  for (const op of ops) {
    if (op.kind === 'ip') {
      const n = neighOp(op.line);
      const s = n && sandbox(op.ns, n.dev);
      if (!n || !s) return null;
      s.neigh = s.neigh.filter((e) => e.ip !== n.ip);
      if (!n.del) s.neigh.push({ ip: n.ip, mac: n.mac });
    } else if (op.kind === 'bridge') {
      const f = fdbOp(op.line);
      const s = f && sandbox(op.ns, f.dev);
      if (!f || !s) return null;
      s.fdb = s.fdb.filter((e) => e.mac !== f.mac);
      if (!f.del) s.fdb.push({ mac: f.mac, dst: f.dst });
    } else {
      return null;
    }
  }
  for (const s of touched.values()) (s.fdb.sort(byMac), (s.neigh = sortByIp(s.neigh)));
  return { ...state, sandboxes: state.sandboxes.map((s) => touched.get(s.ns) ?? s) };
}
