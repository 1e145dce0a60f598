/**
 * diff(desired, actual) → an ordered list of kernel operations. Order is by phase so
 * that everything is created before it is used and deleted after its users are gone,
 * and so that consecutive operations on one namespace with one tool form ONE batch
 * (`ip -n NS -batch -`, `bridge -n NS -batch -`):
 *
 *   1 delete sandboxes no longer wanted (frees their VNI/port in the host namespace: the VXLAN
 *     device is deleted first, synchronously — the kernel destroys a deleted namespace's devices
 *     asynchronously, and until then a sandbox re-created at once for the same network fails with
 *     "A VXLAN device with the specified VNI already exists"; the compliance suite caught it)
 *   2 create new sandbox namespaces
 *   3 per sandbox, delete a VXLAN device whose identity (vni/port/local/flags) is wrong
 *   4 host namespace: delete stray VXLAN links, create VXLAN devices and move them into
 *     their sandboxes (created in the host so their UDP socket stays on the underlay)
 *   5 per sandbox: bridge, addresses, VXLAN mtu/master/up, bridge ports' mtu, neighbour entries
 *   6 per sandbox: FDB entries
 *
 * Lines use `replace` where iproute2 offers it, so a batch re-applied after a partial
 * failure converges instead of failing on "File exists".
 */
import type { FdbEntry, NeighEntry, NodeState, Sandbox, VxlanLink } from './model.js';

export type Op =
  | { kind: 'netns-add'; ns: string }
  /** `vxlan`: the sandbox's VXLAN device, deleted before the namespace. */
  | { kind: 'netns-del'; ns: string; vxlan?: string }
  /** `ns: null` = the host namespace. */
  | { kind: 'ip'; ns: string | null; line: string }
  | { kind: 'bridge'; ns: string; line: string };

function vxlanIdentityEqual(a: VxlanLink, b: VxlanLink): boolean {
  return a.name === b.name && a.vni === b.vni && a.port === b.port && a.local === b.local &&
    a.learning === b.learning && a.proxy === b.proxy;
}

/** `ip link add` line for a VXLAN device (run in the host namespace). */
export function vxlanAddLine(v: VxlanLink): string {
  return `link add ${v.name} mtu ${v.mtu} type vxlan id ${v.vni} dstport ${v.port} local ${v.local}` +
    `${v.learning ? ' learning' : ' nolearning'}${v.proxy ? ' proxy' : ' noproxy'}`;
}

const EMPTY: Sandbox = { ns: '', network: '', bridge: null, vxlan: null, fdb: [], neigh: [] };

export function diff(desired: NodeState, actual: NodeState): Op[] {
  const act = new Map(actual.sandboxes.map((s) => [s.ns, s]));
  const want = new Set(desired.sandboxes.map((s) => s.ns));
  const p1: Op[] = [];
  const p2: Op[] = [];
  const p3: Op[] = [];
  const p4: Op[] = [];
  const p5: Op[] = [];
  const p6: Op[] = [];

  for (const s of actual.sandboxes) if (!want.has(s.ns)) p1.push({ kind: 'netns-del', ns: s.ns, ...(s.vxlan ? { vxlan: s.vxlan.name } : {}) });
  for (const name of actual.strayHostLinks) p4.push({ kind: 'ip', ns: null, line: `link del ${name}` });

  for (const d of desired.sandboxes) {
    let a = act.get(d.ns);
    if (!a) {
      p2.push({ kind: 'netns-add', ns: d.ns });
      a = { ...EMPTY, ns: d.ns };
    }
    const ipLines: string[] = [];
    // Bridge.
    if (d.bridge) {
      const ab = a.bridge;
      if (!ab) ipLines.push(`link add ${d.bridge.name} type bridge`);
      if (!ab || ab.mtu !== d.bridge.mtu || !ab.up) ipLines.push(`link set ${d.bridge.name} mtu ${d.bridge.mtu} up`);
      const have = new Set(ab?.addrs ?? []);
      const wantAddrs = new Set(d.bridge.addrs);
      for (const x of ab?.addrs ?? []) if (!wantAddrs.has(x)) ipLines.push(`addr del ${x} dev ${d.bridge.name}`);
      for (const x of d.bridge.addrs) if (!have.has(x)) ipLines.push(`addr add ${x} dev ${d.bridge.name}`);
    }
    // VXLAN device; a wrong identity means delete and recreate (its entries go with it).
    let av = a.vxlan;
    let aFdb: FdbEntry[] = a.fdb;
    let aNeigh: NeighEntry[] = a.neigh;
    if (av && (!d.vxlan || !vxlanIdentityEqual(d.vxlan, av))) {
      p3.push({ kind: 'ip', ns: d.ns, line: `link del ${av.name}` });
      av = null;
    }
    if (d.vxlan) {
      if (!av) {
        aFdb = [];
        aNeigh = [];
        p4.push({ kind: 'ip', ns: null, line: vxlanAddLine(d.vxlan) });
        p4.push({ kind: 'ip', ns: null, line: `link set ${d.vxlan.name} netns ${d.ns}` });
      }
      const parts: string[] = [];
      if (!av || av.mtu !== d.vxlan.mtu) parts.push(`mtu ${d.vxlan.mtu}`);
      if (!av || av.master !== d.vxlan.master) parts.push(d.vxlan.master ? `master ${d.vxlan.master}` : 'nomaster');
      if (!av || av.up !== d.vxlan.up) parts.push(d.vxlan.up ? 'up' : 'down');
      if (parts.length) ipLines.push(`link set ${d.vxlan.name} ${parts.join(' ')}`);
      const dev = d.vxlan.name;
      // Neighbours: IP → MAC, permanent, on the VXLAN device (answered by its ARP proxy).
      const haveN = new Map(aNeigh.map((n) => [n.ip, n.mac]));
      const wantN = new Map(d.neigh.map((n) => [n.ip, n.mac]));
      for (const n of aNeigh) if (!wantN.has(n.ip)) ipLines.push(`neigh del ${n.ip} dev ${dev}`);
      for (const n of d.neigh) if (haveN.get(n.ip) !== n.mac) ipLines.push(`neigh replace ${n.ip} lladdr ${n.mac} dev ${dev} nud permanent`);
      // FDB: MAC → remote underlay IP.
      const haveF = new Map(aFdb.map((f) => [f.mac, f.dst]));
      const wantF = new Map(d.fdb.map((f) => [f.mac, f.dst]));
      for (const f of aFdb) if (!wantF.has(f.mac)) p6.push({ kind: 'bridge', ns: d.ns, line: `fdb del ${f.mac} dev ${dev} dst ${f.dst} self` });
      for (const f of d.fdb) if (haveF.get(f.mac) !== f.dst) p6.push({ kind: 'bridge', ns: d.ns, line: `fdb replace ${f.mac} dev ${dev} dst ${f.dst} self permanent` });
    }
    // Bridge ports (task veths) follow the bridge's MTU: a port larger than the VXLAN device lets a
    // task send frames the bridge then drops silently (the automatic MTU lowers it at runtime).
    if (d.bridge) for (const p of a.ports ?? []) if (p.mtu !== d.bridge.mtu) ipLines.push(`link set ${p.name} mtu ${d.bridge.mtu}`);
    for (const line of ipLines) p5.push({ kind: 'ip', ns: d.ns, line });
  }
  return [...p1, ...p2, ...p3, ...p4, ...p5, ...p6];
}

/** One process invocation: a namespace operation or a batch script for one tool in one namespace. */
export type Batch =
  | { kind: 'netns-add'; ns: string }
  | { kind: 'netns-del'; ns: string; vxlan?: string }
  | { kind: 'ip' | 'bridge'; ns: string | null; lines: string[] };

/** Groups consecutive ops on the same (tool, namespace) into one batch. */
export function toBatches(ops: readonly Op[]): Batch[] {
  const out: Batch[] = [];
  for (const op of ops) {
    if (op.kind === 'netns-add' || op.kind === 'netns-del') {
      out.push(op);
      continue;
    }
    const last = out[out.length - 1];
    if (last && last.kind !== 'netns-add' && last.kind !== 'netns-del' && last.kind === op.kind && last.ns === op.ns) {
      last.lines.push(op.line);
    }
    else out.push({ kind: op.kind, ns: op.ns, lines: [op.line] });
  }
  return out;
}

/**
 * Human/golden rendering of a plan: each batch as the command line that runs it,
 * followed by its script (what goes to stdin).
 */
export function renderBatches(batches: readonly Batch[], hostNs: string | null): string {
  const out: string[] = [];
  for (const b of batches) {
    if (b.kind === 'netns-add') out.push(`ip netns add ${b.ns}`);
    else if (b.kind === 'netns-del') {
      if (b.vxlan) out.push(`ip -n ${b.ns} link del ${b.vxlan}`);
      out.push(`ip netns del ${b.ns}`);
    }
    else {
      const ns = b.ns ?? hostNs;
      out.push(`${b.kind}${ns ? ` -n ${ns}` : ''} -batch - <<EOF`, ...b.lines, 'EOF');
    }
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/** Canonical form for comparing states (verify after apply: actual == desired). */
export function canonical(s: NodeState): string {
  return JSON.stringify({
    strayHostLinks: [...s.strayHostLinks].sort(),
    sandboxes: [...s.sandboxes].sort((a, b) => (a.ns < b.ns ? -1 : 1)).map((x) => ({
      ns: x.ns,
      bridge: x.bridge && { ...x.bridge, addrs: [...x.bridge.addrs].sort() },
      vxlan: x.vxlan,
      fdb: [...x.fdb].sort((a, b) => (a.mac < b.mac ? -1 : 1)),
      neigh: [...x.neigh].sort((a, b) => (a.ip < b.ip ? -1 : 1)),
    })),
  });
}

/**
 * An operation that takes something away that a running task may use: a sandbox, a stray host VXLAN
 * link, a bridge address, a neighbour or FDB entry. (A sandbox's VXLAN device with the wrong identity
 * is deleted only to be re-created in the same plan: that is a repair, not a removal.)
 */
export function isRemoval(op: Op): boolean {
  if (op.kind === 'netns-del') return true;
  if (op.kind === 'netns-add') return false;
  if (op.kind === 'ip' && op.ns === null) return /^link del /.test(op.line);
  return /^(addr|neigh|fdb) del /.test(op.line);
}

/**
 * The plan without removals: what an agent that just restarted may apply before gossip has synced
 * (it must not delete what its adopted tasks still use, but it must program what changed while it
 * was away, or its tasks cannot answer peers that appeared meanwhile: chaos seed 21).
 */
export function additionsOnly(ops: readonly Op[]): Op[] {
  return ops.filter((op) => !isRemoval(op));
}
