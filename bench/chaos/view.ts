/**
 * What the cluster believes, from every node, and the invariants it must hold once faults stop:
 * every node agrees on members, tables, FDB and LB (no drift, backends = the running tasks), no
 * update stuck, every service has its replicas, and (final check) `debug trace` of the published
 * port is consistent on every node. One Snapshot shape, filled either through the agents' API
 * (cheap, polled while waiting for convergence) or through `netctl ... --format json` (the final
 * check, what a person would run). `problems()` is pure: it lists what does not hold.
 */
import { ApiClient } from '../../src/adapters/api/client.js';
import type { LabState } from '../../src/lab/lab.js';
import { MESH_SVC, NAME_SVC, CLIENT_SVC, PORT, netctl } from './setup.js';

export const SERVICES = [MESH_SVC, NAME_SVC, CLIENT_SVC];
export interface Member { name: string; state: string }
export interface TableEntry { table: string; key: string; value: string; owner: string; ltime: number }
export interface Table { network: string; nodes: string[]; entries: TableEntry[] }
interface Backend { task: string; target: string; state: string }
interface Frontend { key: string; service: string; backends: Backend[]; kernel: string[] | null; held?: unknown[] }
export interface LbNs { netns: string; kind: string; task: string | null; error: string | null; drift: unknown[]; held?: unknown[]; frontends: Frontend[] }
export interface FdbRow { sandbox: string; network: string; ip: string; want: string | null; have: string | null; fdb: string; neigh: string }
export interface NodeView {
  name: string;
  error?: string;
  members?: Member[];
  tables?: Table[];
  lb?: LbNs[];
  fdb?: FdbRow[];
  fdbDrift?: number;
  leader?: boolean | null;
  trace?: { drift: boolean; hops: Array<{ hop: string; where: string; detail: string; ok: boolean }> };
}
export interface ServiceJ { id: string; name: string; version: number; replicas: { running: number; desired: number }; update: { state: string; message?: string } | null; vips?: Record<string, string> }
export interface TaskJ { id: string; name: string; slot: number | null; node: string | null; desiredState: string; state: string; specVersion?: number; addresses: Record<string, string> }
export interface Snapshot { at: number; nodes: NodeView[]; services: Record<string, { svc: ServiceJ; tasks: TaskJ[] } | { error: string }> }

const STOPPED = new Set(['shutdown', 'complete', 'failed', 'rejected', 'orphaned', 'remove', 'removed']);

function client(lab: LabState, node: string, timeoutMs = 3000): ApiClient {
  return new ApiClient({ socketPath: lab.nodes.find((n) => n.name === node)!.socket, timeoutMs });
}

/** Tasks and service of each soak service, from the manager through the first agent that answers. */
export async function managerView(lab: LabState, prefer: string[] = []): Promise<Snapshot['services']> {
  const order = [...prefer, ...lab.nodes.map((n) => n.name)];
  const out: Snapshot['services'] = {};
  for (const s of SERVICES) {
    let last = 'no node answered';
    for (const n of order) {
      try {
        const c = client(lab, n);
        const svc = await c.call<ServiceJ>('GET', `/v1/manager/services/${s}`);
        const tasks = await c.call<TaskJ[]>('GET', `/v1/manager/tasks?service=${s}`);
        out[s] = { svc, tasks };
        break;
      } catch (e) {
        last = `${n}: ${(e as Error).message}`;
      }
    }
    out[s] ??= { error: last };
  }
  return out;
}

/** The manager's node list (hostname → state: ready | disconnected | down), from the first node that answers. */
export async function managerNodes(lab: LabState): Promise<Map<string, string>> {
  for (const n of lab.nodes) {
    try {
      const list = await client(lab, n.name).call<Array<{ hostname: string; state: string }>>('GET', '/v1/manager/nodes');
      return new Map(list.map((x) => [x.hostname, x.state]));
    } catch {
      // not a manager, or not reachable now: ask the next node
    }
  }
  return new Map();
}

/** Every node's view through its agent API (used while waiting for convergence). */
export async function apiSnapshot(lab: LabState): Promise<Snapshot> {
  const nodes = await Promise.all(lab.nodes.map(async (n): Promise<NodeView> => {
    const c = client(lab, n.name);
    try {
      const [members, tables, lb, ov, cl] = await Promise.all([
        c.call<Member[]>('GET', '/v1/gossip/members'),
        c.call<Table[]>('GET', '/v1/gossip/tables'),
        c.call<{ namespaces: LbNs[] }>('GET', '/v1/lb/status'),
        c.call<{ drift: number; fdb: FdbRow[] }>('GET', '/v1/overlay/status'),
        c.call<{ leader: boolean | null }>('GET', '/v1/cluster'),
      ]);
      return { name: n.name, members, tables, lb: lb.namespaces, fdb: ov.fdb, fdbDrift: ov.drift, leader: cl.leader };
    } catch (e) {
      return { name: n.name, error: (e as Error).message };
    }
  }));
  return { at: Date.now(), nodes, services: await managerView(lab) };
}

async function cliJson<T>(lab: string, node: string, args: string[]): Promise<T> {
  const r = await netctl(lab, node, [...args, '--format', 'json'], 30_000);
  if (r.code !== 0) throw new Error(`netctl ${args.join(' ')} on ${node}: exit ${r.code}: ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as T;
}

/** Every node's view through netctl (the final check), with `debug trace` of each node's published port. */
export async function cliSnapshot(lab: LabState): Promise<Snapshot> {
  const nodes: NodeView[] = [];
  // one node at a time: 5 netctl processes per node are enough load for a 2-core machine
  for (const n of lab.nodes) {
    try {
      const members = await cliJson<Member[]>(lab.name, n.name, ['debug', 'members']);
      const tables = await cliJson<Table[]>(lab.name, n.name, ['debug', 'tables']);
      const lb = await cliJson<{ namespaces: LbNs[] }>(lab.name, n.name, ['debug', 'lb']);
      const fdb = await cliJson<{ drift: number; fdb: FdbRow[] }>(lab.name, n.name, ['debug', 'fdb']);
      const trace = await cliJson<NodeView['trace']>(lab.name, n.name, ['debug', 'trace', '--to', `${n.name}:${PORT}`]);
      const st = await cliJson<{ leader: boolean | null }>(lab.name, n.name, ['cluster', 'status']);
      nodes.push({ name: n.name, members, tables, lb: lb.namespaces, fdb: fdb.fdb, fdbDrift: fdb.drift, trace, leader: st.leader });
    } catch (e) {
      nodes.push({ name: n.name, error: (e as Error).message });
    }
  }
  const services: Snapshot['services'] = {};
  for (const s of SERVICES) {
    try {
      const ins = await netctl(lab.name, 'n1', ['service', 'inspect', s], 30_000);
      if (ins.code !== 0) throw new Error(`netctl service inspect ${s}: exit ${ins.code}: ${ins.stderr.trim()}`);
      const svc = (JSON.parse(ins.stdout) as ServiceJ[])[0]!;
      services[s] = { svc, tasks: await cliJson<TaskJ[]>(lab.name, 'n1', ['service', 'ps', s]) };
    } catch (e) {
      services[s] = { error: (e as Error).message };
    }
  }
  return { at: Date.now(), nodes, services };
}

const sorted = (xs: Iterable<string>): string => [...xs].sort().join(',');
export const live = (tasks: TaskJ[]): TaskJ[] => tasks.filter((t) => t.desiredState === 'running');

/** Everything that does not hold in `s` (empty = converged). Pure. */
export function problems(s: Snapshot, allNodes: string[]): string[] {
  const p: string[] = [];
  const svcs = new Map<string, { svc: ServiceJ; tasks: TaskJ[] }>();
  for (const [name, v] of Object.entries(s.services)) {
    if ('error' in v) {
      p.push(`service ${name}: ${v.error}`);
      continue;
    }
    svcs.set(name, v);
    const u = v.svc.update?.state;
    if (u && !['completed', 'rollback_completed'].includes(u)) p.push(`service ${name}: update ${u} (${v.svc.update?.message ?? ''})`);
    const want = v.svc.replicas.desired;
    const run = live(v.tasks);
    if (run.length !== want || run.some((t) => t.state !== 'running')) p.push(`service ${name}: ${run.filter((t) => t.state === 'running').length}/${want} running (${run.map((t) => `${t.name.split('.').slice(0, 2).join('.')}@${t.node}:${t.state}`).join(' ')})`);
    if (new Set(run.map((t) => t.slot)).size !== run.length) p.push(`service ${name}: two live tasks in one slot (${run.map((t) => t.slot).join(',')})`);
    const lingering = v.tasks.filter((t) => t.desiredState !== 'running' && !STOPPED.has(t.state));
    if (lingering.length) p.push(`service ${name}: stopped tasks still ${lingering.map((t) => `${t.name.split('.').slice(0, 2).join('.')}:${t.state}`).join(' ')}`);
  }
  const leaders = s.nodes.filter((n) => n.leader === true).map((n) => n.name);
  if (leaders.length !== 1) p.push(`leaders: ${leaders.join(',') || 'none'}`);
  // network → ip → {node, service} of every live task
  const ipsOf = (svc: string, network: string) => live(svcs.get(svc)?.tasks ?? []).map((t) => t.addresses[network]).filter((x): x is string => !!x);
  const taskIds = new Set([...svcs.values()].flatMap((v) => live(v.tasks).map((t) => t.id)));
  const tablesByNet = new Map<string, Array<{ node: string; t: Table }>>();
  for (const n of s.nodes) {
    if (n.error) {
      p.push(`${n.name}: ${n.error}`);
      continue;
    }
    const alive = (n.members ?? []).filter((m) => m.state === 'alive').map((m) => m.name);
    if (sorted(alive) !== sorted(allNodes)) p.push(`${n.name}: members alive ${sorted(alive)}`);
    for (const t of n.tables ?? []) {
      const l = tablesByNet.get(t.network) ?? [];
      l.push({ node: n.name, t });
      tablesByNet.set(t.network, l);
      const stray = t.entries.filter((e) => !e.key.startsWith('sbox-') && !taskIds.has(e.key));
      if (stray.length) p.push(`${n.name}: table ${t.network} holds endpoints of tasks not live: ${stray.map((e) => `${e.key.slice(0, 12)}@${e.owner}`).join(' ')}`);
    }
    // the routing mesh answers on every node, with or without a local task (ARCHITECTURE §4 case 13)
    if (n.lb && !n.lb.some((ns) => ns.kind === 'ingress' && ns.frontends.some((f) => f.key === `ingress tcp ${PORT}`))) p.push(`${n.name}: no ingress frontend for ${PORT} (its published port does not answer)`);
    for (const ns of n.lb ?? []) {
      if (ns.error) p.push(`${n.name}: lb ${ns.netns}: error ${ns.error}`);
      if (ns.drift.length) p.push(`${n.name}: lb ${ns.netns}: drift ${JSON.stringify(ns.drift).slice(0, 300)}`);
      if (ns.held?.length) p.push(`${n.name}: lb ${ns.netns}: held ${JSON.stringify(ns.held).slice(0, 300)}`);
      for (const f of ns.frontends) {
        const v = svcs.get(f.service);
        if (!v) continue;
        const net = f.key.startsWith('ingress ') ? 'ingress' : Object.entries(v.svc.vips ?? {}).find(([, vip]) => f.key.includes(` ${vip} `))?.[0];
        if (!net) continue;
        const want = sorted(ipsOf(f.service, net));
        const desired = sorted(f.backends.filter((b) => b.state === 'active').map((b) => b.target.split(':')[0]!));
        const kernel = sorted((f.kernel ?? []).map((k) => k.split(':')[0]!));
        if (desired !== want || kernel !== want) p.push(`${n.name}: lb ${ns.kind} ${f.key}: desired ${desired} kernel ${kernel} want ${want}`);
      }
    }
    if (n.fdbDrift) p.push(`${n.name}: fdb drift ${n.fdbDrift}`);
    for (const r of n.fdb ?? []) if (r.want !== r.have || r.fdb !== 'ok' || r.neigh !== 'ok') p.push(`${n.name}: fdb ${r.network} ${r.ip}: want ${r.want} have ${r.have} fdb ${r.fdb} neigh ${r.neigh}`);
    if (n.trace) {
      const bad = n.trace.hops.filter((h) => !h.ok);
      const tasks = n.trace.hops.filter((h) => h.hop === 'task').map((h) => /^(\S+)/.exec(h.detail)?.[1] ?? '?');
      const want = sorted(live(svcs.get(MESH_SVC)?.tasks ?? []).map((t) => t.name));
      if (n.trace.drift || bad.length) p.push(`${n.name}: trace ${n.name}:${PORT} drift: ${bad.map((h) => `${h.hop}@${h.where}: ${h.detail}`).join('; ')}`);
      if (sorted(tasks) !== want) p.push(`${n.name}: trace ${n.name}:${PORT} reaches ${sorted(tasks)}, want ${want}`);
    }
  }
  // every node is in the ingress network, whether or not it runs a task: its published ports go through it
  const up = s.nodes.filter((n) => !n.error).map((n) => n.name);
  const ingress = tablesByNet.get('ingress') ?? [];
  const outside = up.filter((n) => !ingress.some((h) => h.node === n));
  if (outside.length) p.push(`ingress network: ${outside.join(',')} not in it (their published port cannot reach remote tasks)`);
  for (const h of ingress) if (sorted(h.t.nodes) !== sorted(allNodes)) p.push(`${h.node}: ingress network members ${sorted(h.t.nodes)}`);
  for (const [net, holders] of tablesByNet) {
    const canon = (t: Table) => sorted(t.entries.map((e) => `${e.table}/${e.key}@${e.owner}:${e.ltime}:${e.value.length}`));
    const first = canon(holders[0]!.t);
    const differ = holders.filter((h) => canon(h.t) !== first).map((h) => h.node);
    if (differ.length) p.push(`table ${net}: ${differ.join(',')} differ from ${holders[0]!.node}`);
    // the FDB of each holder = every endpoint of the network on another node
    for (const h of holders) {
      const n = s.nodes.find((x) => x.name === h.node);
      if (!n?.fdb) continue;
      const want = sorted(h.t.entries.map((e) => JSON.parse(e.value) as { ip: string; node: string }).filter((e) => e.node !== h.node).map((e) => e.ip));
      const have = sorted(n.fdb.filter((r) => r.network === net).map((r) => r.ip));
      if (want !== have) p.push(`${h.node}: fdb ${net} has ${have}, table says ${want}`);
    }
  }
  return p;
}
