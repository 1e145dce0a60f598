/**
 * `netctl debug trace --to NODE:PORT [--from client|TASK]`: walks the path a new connection
 * would take — published port → ingress rule → backends chosen by the kernel → VXLAN peer →
 * task — from the state actually programmed on each node (what the agents read back from the
 * kernel), and flags every hop where desired and actual differ. With `--from TASK` and
 * `--to SERVICE:PORT` it walks the VIP path from inside that task instead.
 *
 * Other nodes are asked through the one agent netctl talks to (its peer API, src/agent/peer), or in
 * a lab through each node's socket (context.ts: labMode). `--to` takes a node name or its underlay
 * address. A node that cannot be asked is a hop marked `unreachable: <reason>`, and the walk goes on.
 */
import { Command } from 'commander';
import type { ApiClient } from '../adapters/api/client.js';
import { MeshError, toMeshError } from '../core/errors.js';
import { hostOfAddr, isUnderlayIp } from '../core/hostport.js';
import { canonicalIp6, isIp6 } from '../core/ipam/addr6.js';
import { agentOf, labMode, nodeClientFor, type GlobalOpts } from './context.js';
import { formatted, parseFormat, printJson } from './format.js';
import { policyHops, type Hop } from './trace-policy.js';

interface LbRow { key: string; service: string; backends: Array<{ task: string; target: string; state: string; local: boolean }>; kernel: string[] | null; kernelDraining?: string[] }
interface LbNs { netns: string; kind: 'task' | 'ingress'; task: string | null; frontends: LbRow[]; drift: string[]; error: string | null }
interface LbStatus { node: string; backend: string; namespaces: LbNs[] }
interface FdbRow { sandbox: string; network: string; mac: string; ip: string; want: string | null; have: string | null; fdb: string; neigh: string }
interface OverlayStatus { node: string; fdb: FdbRow[] }
interface Member { name: string; addr: string; state: string }
interface TaskView { id: string; name: string; state: string; netns: string | null; networks: string[]; ips?: Record<string, string>; ips6?: Record<string, string> }

export type { Hop } from './trace-policy.js';

/** `NAME:PORT`, `A.B.C.D:PORT` or `[IPV6]:PORT` (the IPv6 address returned canonical, as the LB keys it). */
export function parseTo(to: string): { target: string; port: number } {
  const b = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(to);
  if (b && isIp6(b[1]!) && Number(b[2]) >= 1 && Number(b[2]) <= 65535) return { target: canonicalIp6(b[1]!), port: Number(b[2]) };
  const m = /^([^:]+):(\d{1,5})$/.exec(to);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new MeshError('MESHD_BAD_ARGUMENT', `--to must be NODE:PORT, ADDRESS:PORT, [IPV6]:PORT or SERVICE:PORT, got ${JSON.stringify(to)}`);
  return { target: m[1]!, port: Number(m[2]) };
}

/** A node that could not be asked (its agent down, refused, no valid certificate): a hop, not a crash. */
export function unreachableReason(e: unknown): string | null {
  const err = toMeshError(e);
  return err.code === 'MESHD_PEER_UNREACHABLE' || err.code === 'MESHD_AGENT_UNREACHABLE' ? err.message : null;
}

/** In a lab, an underlay address names the node whose member address it is (asked of the -H/--node agent). */
async function labNodeOfAddr(g: GlobalOpts, ip: string): Promise<string> {
  const members = await nodeClientFor(g).call<Member[]>('GET', '/v1/gossip/members');
  const m = members.find((x) => hostOfAddr(x.addr) === ip); // [v6]:port on an IPv6 underlay
  if (!m) throw new MeshError('MESHD_NODE_NOT_FOUND', `no node with underlay address ${ip} in the gossip membership (see: netctl debug members)`);
  return m.name;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

/**
 * Backend hops shared by both paths: kernel choice, VXLAN peer on the entry node, the task on its
 * node. On IPVS the kernel also holds draining tasks (real servers at weight 0, which keep their
 * established connections): one missing there, or a weight-0 real nobody wants, is flagged too.
 */
async function backendHops(g: GlobalOpts, entry: ApiClient, entryNode: string, row: LbRow, network: string | null, hops: Hop[], backend: string, fdbIp: ReadonlyMap<string, string> = new Map()): Promise<void> {
  const want = row.backends.filter((b) => b.state === 'active').map((b) => b.target);
  const kernel = row.kernel ?? [];
  const missing = want.filter((t) => !kernel.includes(t));
  const extra = kernel.filter((t) => !want.includes(t));
  const ipvs = backend === 'ipvs' && row.kernel !== null;
  const draining = ipvs ? row.kernelDraining ?? [] : [];
  const extraDraining = draining.filter((t) => !row.backends.some((b) => b.state === 'draining' && b.target === t));
  hops.push({
    hop: 'backends', where: entryNode,
    detail: `kernel picks among ${kernel.length ? kernel.join(', ') : '(none)'}` + (draining.length ? `; weight 0 (draining): ${draining.join(', ')}` : '') +
      (row.kernel === null ? ' — frontend ABSENT from the kernel' : '') + (missing.length ? ` — MISSING ${missing.join(', ')}` : '') + (extra.length ? ` — EXTRA ${extra.join(', ')}` : '') +
      (extraDraining.length ? ` — EXTRA at weight 0 ${extraDraining.join(', ')}` : ''),
    ok: row.kernel !== null && sameSet(want, kernel) && extraDraining.length === 0,
  });
  const overlay = await entry.call<OverlayStatus>('GET', network ? `/v1/overlay/status?network=${encodeURIComponent(network)}` : '/v1/overlay/status');
  const members = await entry.call<Member[]>('GET', '/v1/gossip/members');
  const byAddr = new Map(members.map((m) => [hostOfAddr(m.addr), m]));
  for (const b of row.backends) {
    // VXLAN FDB and neighbour rows are keyed by the task's IPv4 address (one MAC for both families):
    // an IPv6 backend is looked up by its task's IPv4 address (fdbIp), named by both.
    const addr = hostOfAddr(b.target);
    const ip = fdbIp.get(b.task) ?? addr;
    const shown = ip === addr ? ip : `${addr} (${ip})`;
    if (b.state !== 'active') {
      const gone = ipvs && !draining.includes(b.target);
      hops.push({ hop: 'backend', where: entryNode, detail: `${b.target} task ${b.task.slice(0, 12)} is draining: no new connections` + (gone ? ' — MISSING from IPVS at weight 0 (its established connections lose their real server)' : ''), ok: !gone });
      continue;
    }
    let node = entryNode;
    if (b.local) {
      hops.push({ hop: 'vxlan', where: entryNode, detail: `${shown} is local (same bridge, no VXLAN hop)`, ok: true });
    } else {
      const f = overlay.fdb.find((r) => r.ip === ip);
      const peer = f?.want ? byAddr.get(f.want) : undefined;
      node = peer?.name ?? '?';
      const ok = !!f && f.fdb === 'ok' && f.neigh === 'ok';
      hops.push({
        hop: 'vxlan', where: entryNode,
        detail: f ? `${shown} (${f.mac}) → VXLAN peer ${f.want ?? '?'} (${node})${f.fdb !== 'ok' ? ` — FDB ${f.fdb.toUpperCase()}${f.have ? ` (kernel has ${f.have})` : ''}` : ''}${f.neigh !== 'ok' ? ` — NEIGH ${f.neigh.toUpperCase()}` : ''}` : `${shown}: no FDB/neighbour row on ${entryNode} — MISSING`,
        ok,
      });
    }
    if (node === '?') continue;
    try {
      const t = await agentOf(g, node).call<TaskView>('GET', `/v1/tasks/${encodeURIComponent(b.task)}`);
      hops.push({ hop: 'task', where: node, detail: `${t.name} ${t.state}${t.netns ? ` in ${t.netns}` : ''}`, ok: t.state === 'running' });
    } catch (e) {
      const why = unreachableReason(e);
      hops.push({ hop: 'task', where: node, detail: why ? `task ${b.task.slice(0, 12)}: unreachable: ${why}` : `task ${b.task.slice(0, 12)}: ${(e as Error).message}`, ok: false });
    }
  }
}

export async function traceMesh(g: GlobalOpts, target: string, port: number, proto: string): Promise<Hop[]> {
  const entry = agentOf(g, labMode(g) && isUnderlayIp(target) ? await labNodeOfAddr(g, target) : target);
  let lb: LbStatus;
  try {
    lb = await entry.call<LbStatus>('GET', '/v1/lb/status');
  } catch (e) {
    const why = unreachableReason(e);
    if (!why) throw e;
    return [{ hop: 'published port', where: target, detail: `unreachable: ${why}`, ok: false }];
  }
  const node = lb.node;
  const hops: Hop[] = [];
  const key = `ingress ${proto} ${port}`;
  const ns = lb.namespaces.find((n) => n.kind === 'ingress' && n.frontends.some((f) => f.key === key));
  if (!ns) throw new MeshError('MESHD_NOT_FOUND', `no service publishes ${proto}/${port} on ${node} (see: netctl service ls)`);
  const row = ns.frontends.find((f) => f.key === key)!;
  hops.push({ hop: 'published port', where: node, detail: `${node}:${port}/${proto} → service ${row.service} (host DNAT to ingress sandbox ${ns.netns}, dataplane ${lb.backend})`, ok: ns.error === null });
  const nsDrift = ns.drift.filter((d) => d.includes(String(port)));
  hops.push({ hop: 'ingress rule', where: ns.netns, detail: `${key}: ${row.backends.length} desired backend(s)${nsDrift.length ? ` — DRIFT: ${nsDrift.join('; ')}` : ''}`, ok: nsDrift.length === 0 && row.kernel !== null });
  await backendHops(g, entry, node, row, 'ingress', hops, lb.backend);
  return hops;
}

/**
 * The VIP path from inside task `fromTask`. `target` is a service name (its IPv4 VIP, or its IPv6
 * VIP with `ipv6`) or a VIP address, IPv4 or IPv6 (`--to [fd00::10]:80`): the frontend of that
 * address in the task's namespace, whatever service owns it.
 */
export async function traceVip(g: GlobalOpts, fromTask: string, target: string, port: number, proto: string, ipv6 = false): Promise<Hop[]> {
  const local = nodeClientFor(g);
  const task = await local.call<TaskView>('GET', `/v1/tasks/${encodeURIComponent(fromTask)}`);
  const byAddr = isUnderlayIp(target);
  const lb = await local.call<LbStatus & { node: string }>('GET', byAddr ? '/v1/lb/status' : `/v1/lb/status?service=${encodeURIComponent(target)}`);
  const ns = lb.namespaces.find((n) => n.kind === 'task' && n.task === task.id);
  if (!ns) throw new MeshError('MESHD_NOT_FOUND', `task ${task.name} has no load-balancer state on ${lb.node}`);
  const v6 = (r: LbRow): boolean => r.key.split(' ')[1]!.includes(':');
  const row = byAddr
    ? ns.frontends.find((f) => f.key === `vip ${target} ${proto} ${port}`)
    : ns.frontends.find((f) => f.service === target && f.key.endsWith(` ${proto} ${port}`) && v6(f) === ipv6);
  if (!row) {
    throw new MeshError('MESHD_NOT_FOUND', byAddr
      ? `no VIP ${target} ${proto}/${port} in the namespace of ${task.name} (see: netctl debug lb)`
      : `service ${target} has no ${ipv6 ? 'IPv6 ' : ''}VIP ${proto}/${port} on the networks of ${task.name}`);
  }
  const service = row.service;
  const rowDrift = ns.drift.filter((d) => d.includes(row.key));
  const drift = byAddr || ipv6 ? rowDrift : ns.drift;
  const hops: Hop[] = [{ hop: 'VIP rule', where: ns.netns, detail: `${row.key} → service ${service} (DNAT inside the task's own namespace, dataplane ${lb.backend}${v6(row) ? ', IPv6 table' : ''})${drift.length ? ` — DRIFT: ${drift.join('; ')}` : ''}`, ok: drift.length === 0 && row.kernel !== null }];
  // an IPv6 frontend's tasks: their IPv4 addresses (same service and port) find their FDB rows
  const fdbIp = new Map<string, string>();
  if (v6(row)) {
    const port4 = row.key.split(' ').slice(2).join(' ');
    const row4 = ns.frontends.find((f) => f.service === service && !v6(f) && f.key.endsWith(` ${port4}`));
    for (const b of row4?.backends ?? []) fdbIp.set(b.task, hostOfAddr(b.target));
  }
  await backendHops(g, local, lb.node, row, task.networks[0] ?? null, hops, lb.backend, fdbIp);
  hops.push(...await policyHops(g, local, v6(row) ? task.ips6 ?? {} : task.ips ?? {}, row.backends));
  return hops;
}

export function traceCommand(globals: () => GlobalOpts): Command {
  return new Command('trace')
    .description('walk the path of a new connection from the kernel state on each node, flagging drift')
    .requiredOption('--to <target>', 'NODE:PORT or ADDRESS:PORT (routing mesh, entering at that node) or SERVICE:PORT (VIP, with --from TASK)')
    .option('--from <src>', 'client (default: from outside, through the mesh) or a task name/id on the -H/--node agent')
    .option('--proto <p>', 'tcp|udp', 'tcp')
    .option('--ipv6', 'with --from TASK --to SERVICE:PORT: the service\'s IPv6 VIP (or give the VIP itself: --to [fd00::10]:80)')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { to: string; from?: string; proto: string; ipv6?: boolean; format?: string }) => {
      if (o.proto !== 'tcp' && o.proto !== 'udp') throw new MeshError('MESHD_BAD_ARGUMENT', `--proto must be tcp or udp, got ${o.proto}`);
      const { target, port } = parseTo(o.to);
      const g = globals();
      const hops = !o.from || o.from === 'client' ? await traceMesh(g, target, port, o.proto) : await traceVip(g, o.from, target, port, o.proto, o.ipv6 === true);
      const drift = hops.some((h) => !h.ok);
      const denied = hops.filter((h) => h.denied);
      if (formatted({ to: o.to, from: o.from ?? 'client', drift, denied: denied.length > 0, hops }, o.format)) return;
      hops.forEach((h, i) => process.stdout.write(`${String(i + 1).padStart(2)}. ${h.denied ? 'DENY ' : h.ok ? 'ok   ' : 'DRIFT'} ${h.hop.padEnd(15)} ${h.where.padEnd(28)} ${h.detail}\n`));
      process.stdout.write(drift ? 'drift found: desired and kernel state differ on the hops marked DRIFT\n' : 'path consistent: every hop matches the desired state\n');
      for (const h of denied) process.stdout.write(`${h.detail.slice(h.detail.indexOf('denied by policy'))}\n`);
    });
}
