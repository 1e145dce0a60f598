/**
 * Worker CLI: `netctl exec TASK -- CMD...`, `netctl task ls`, and the overlay debug views
 * `netctl debug fdb [--network N]` and `netctl debug sandbox` (added to the `debug` command).
 * All of them ask the agent (GET /v1/tasks, GET /v1/overlay/status); exec then runs the
 * command with `ip netns exec` in the task's namespace (both runtimes name it), with the
 * terminal attached, and exits with the command's status.
 *
 * `exec TASK` finds the task's node itself: this node's tasks first, else the manager's task list
 * (through the local agent); a task on another node runs there through the local agent's peer API
 * (src/agent/peer: served only when this node is a manager), its output returned when it ends.
 * `--node N` names the node (in a lab: its socket, context.ts).
 */
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import type { ApiClient } from '../adapters/api/client.js';
import { clientFor, labMode, nodeClientFor, peerClient, type GlobalOpts } from './context.js';
import { findLogTask, type LogTask } from './logs-lines.js';
import { formatted, parseFormat, printJson, table } from './format.js';

interface TaskRow {
  id: string;
  name: string;
  service: string;
  runtime: string;
  state: string;
  ips: Record<string, string>;
  netns: string | null;
  container: string | null;
  pid: number | null;
  error: string | null;
}

interface FdbRow {
  sandbox: string;
  network: string;
  ip: string | null;
  mac: string;
  want: string | null;
  have: string | null;
  fdb: string;
  neigh: string;
}
interface SandboxRow {
  sandbox: string;
  network: string;
  state: string;
  details: string[];
  fdbEntries: number;
  neighEntries: number;
  mtu?: number | null;
}
/** The automatic MTU as `GET /v1/overlay/status` reports it (src/agent/overlay/mtu.ts OverlayMtuView). */
interface MtuView {
  link: number;
  underlay: number;
  overlay: number;
  limitedBy: 'link' | 'path';
  peer: string | null;
  paths: Record<string, number | null>;
  probe: boolean;
  rounds: number;
  lastChange: { overlayFrom: number; overlayTo: number; at: number } | null;
}
interface OverlayStatusView {
  node: string;
  active: boolean;
  drift: number;
  lastError: { message?: string } | null;
  guardAllow: string[];
  fdb: FdbRow[];
  sandboxes: SandboxRow[];
  strayHostLinks: string[];
  mtu?: MtuView | null;
}

/** One line on the automatic MTU: what it is, what limits it, and each peer's path. */
export function mtuLine(m: MtuView): string {
  const why = m.limitedBy === 'path' ? `smallest path: ${m.peer ?? '?'} carries ${m.underlay}` : `link MTU ${m.link}`;
  const paths = Object.entries(m.paths).map(([p, v]) => `${p}=${v ?? '?'}`).join(' ');
  return `overlay MTU ${m.overlay} (automatic, networks without --mtu; ${why}; ${m.probe ? `${m.rounds} probe round(s)` : 'probes off'})` +
    `${paths ? `; paths: ${paths}` : ''}\n`;
}

/**
 * Finds a task by id, full name (`web.1.<id>`), short name (`web.1`, as `service ps` shows
 * it; the running one when a slot also has stopped tasks here) or id prefix (≥ 4 chars, unique).
 */
export function findTask(rows: readonly TaskRow[], key: string): TaskRow {
  const exact = rows.find((t) => t.id === key || t.name === key);
  if (exact) return exact;
  const short = rows.filter((t) => t.name === `${key}.${t.id}`);
  const live = short.filter((t) => t.state !== 'stopped');
  if (live.length === 1 || (live.length === 0 && short.length === 1)) return live[0] ?? short[0]!;
  if (short.length > 1) throw new MeshError('MESHD_BAD_ARGUMENT', `task name ${key} is ambiguous on this node: ${short.map((t) => t.id).join(', ')}`);
  const pre = key.length >= 4 ? rows.filter((t) => t.id.startsWith(key)) : [];
  if (pre.length === 1) return pre[0]!;
  if (pre.length > 1) throw new MeshError('MESHD_BAD_ARGUMENT', `task prefix ${key} is ambiguous: ${pre.map((t) => t.id).join(', ')}`);
  throw new MeshError('MESHD_NOT_FOUND', `no task ${key} on this node (see: netctl task ls)`);
}

/**
 * Where TASK runs and its row there. `--node` (or lab mode) names the agent; otherwise this node's
 * tasks first, then the manager's task list (GET /v1/manager/tasks; managers only) names the node,
 * asked through the local agent's peer API. `remote`: the task is not on the node netctl runs on.
 */
async function locateTask(g: GlobalOpts, key: string): Promise<{ agent: ApiClient; t: TaskRow; remote: boolean }> {
  if (labMode(g) || g.node !== undefined) {
    const agent = nodeClientFor(g);
    return { agent, t: findTask(await agent.call<TaskRow[]>('GET', '/v1/tasks'), key), remote: !labMode(g) };
  }
  const local = clientFor(g);
  try {
    return { agent: local, t: findTask(await local.call<TaskRow[]>('GET', '/v1/tasks'), key), remote: false };
  } catch (e) {
    if (!(e instanceof MeshError) || e.code !== 'MESHD_NOT_FOUND') throw e;
  }
  let listed: LogTask | null;
  try {
    listed = findLogTask(await local.call<LogTask[]>('GET', '/v1/manager/tasks'), key);
  } catch (e) {
    // A worker node cannot read the cluster's task list (nor exec on other nodes): say what to do.
    if (e instanceof MeshError && (e.code === 'MESHD_FORBIDDEN' || e.code === 'MESHD_NOT_READY')) {
      throw new MeshError('MESHD_NOT_FOUND', `no task ${key} on this node, and the cluster's task list is not readable here (${e.message}); run netctl on a manager node`);
    }
    throw e;
  }
  if (!listed) throw new MeshError('MESHD_NOT_FOUND', `no task ${key} in the cluster (see: netctl service ps SERVICE)`);
  if (listed.node === null) throw new MeshError('MESHD_NOT_READY', `task ${listed.name} is not placed on a node (${listed.state})`);
  const agent = peerClient(g, listed.node);
  return { agent, t: findTask(await agent.call<TaskRow[]>('GET', '/v1/tasks'), listed.id), remote: true };
}

const driftMark = (s: string): string => (s === 'ok' ? 'ok' : s.toUpperCase());

/** `exec` and `task` for the top level. */
export function workerCommands(globals: () => GlobalOpts, setExit: (code: number) => void): Command[] {
  const exec = new Command('exec')
    .description('run a command in a task: inside its container (docker runtime; output returned when it ends) or in its network namespace (netns runtime, terminal attached)')
    .argument('<task>', 'task id, id prefix or name')
    .argument('<cmd...>', 'command and arguments, after --')
    .action(async (task: string, cmd: string[]) => {
      if (!cmd.length) throw new MeshError('MESHD_BAD_ARGUMENT', 'no command given (use: -- CMD ARGS...)');
      const g = globals();
      const { agent, t, remote } = await locateTask(g, task);
      if (!t.netns || t.state === 'stopped') throw new MeshError('MESHD_NOT_READY', `task ${t.name} is ${t.state}; it has no namespace`);
      if (t.runtime === 'docker' || remote) {
        // Inside the container (docker: its image's filesystem) or, on another node, in the task's
        // namespace there: through that node's agent, output returned when the command ends.
        const res = await agent.call<{ code: number; stdout: string; stderr: string }>('POST', `/v1/tasks/${encodeURIComponent(t.id)}/exec`, { argv: cmd });
        process.stdout.write(res.stdout);
        process.stderr.write(res.stderr);
        setExit(res.code);
        return;
      }
      const r = spawnSync('ip', ['netns', 'exec', t.netns, ...cmd], { stdio: 'inherit' });
      if (r.error) throw new MeshError('MESHD_EXEC_FAILED', `${cmd[0]}: ${r.error.message}`);
      setExit(r.status ?? 128);
    });

  const task = new Command('task').description('tasks on one node');
  task
    .command('ls')
    .description('tasks this node runs or was assigned, with state and addresses')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const rows = await nodeClientFor(globals()).call<TaskRow[]>('GET', '/v1/tasks');
      if (formatted(rows, o.format)) return;
      process.stdout.write(table(['ID', 'NAME', 'SERVICE', 'RUNTIME', 'STATE', 'ADDRESSES', 'PID', 'ERROR'],
        rows.map((t) => [t.id.slice(0, 12), t.name, t.service, t.runtime, t.state,
          Object.entries(t.ips).map(([n, ip]) => `${n}=${ip}`).join(','), t.pid, t.error])));
    });
  return [exec, task];
}

/** `fdb` and `sandbox`, to add to the existing `debug` command. */
export function workerDebugCommands(globals: () => GlobalOpts): Command[] {
  const fdb = new Command('fdb')
    .description('overlay FDB and neighbour entries: desired vs kernel, drift marked')
    .option('--network <net>', 'only this network (name or id)')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { network?: string; format?: string }) => {
      const q = o.network ? `?network=${encodeURIComponent(o.network)}` : '';
      const st = await nodeClientFor(globals()).call<OverlayStatusView>('GET', `/v1/overlay/status${q}`);
      if (formatted({ node: st.node, drift: st.drift, fdb: st.fdb }, o.format)) return;
      process.stdout.write(table(['SANDBOX', 'NETWORK', 'IP', 'MAC', 'WANT', 'HAVE', 'FDB', 'NEIGH'],
        st.fdb.map((r) => [r.sandbox, r.network, r.ip, r.mac, r.want, r.have, driftMark(r.fdb), driftMark(r.neigh)])));
      process.stdout.write(st.drift ? `drift: ${st.drift} operation(s) pending; the next reconcile repairs them\n` : 'no drift\n');
    });

  const sandbox = new Command('sandbox')
    .description('overlay sandboxes (one per network): desired vs kernel, VXLAN guard members')
    .option('--format <fmt>', 'table|json')
    .action(async (o: { format?: string }) => {
      const st = await nodeClientFor(globals()).call<OverlayStatusView>('GET', '/v1/overlay/status');
      if (parseFormat(o.format) === 'json') {
        return printJson({ node: st.node, active: st.active, drift: st.drift, lastError: st.lastError, guardAllow: st.guardAllow, sandboxes: st.sandboxes, strayHostLinks: st.strayHostLinks, mtu: st.mtu ?? null });
      }
      process.stdout.write(table(['SANDBOX', 'NETWORK', 'STATE', 'MTU', 'FDB', 'NEIGH', 'DETAILS'],
        st.sandboxes.map((s) => [s.sandbox, s.network, driftMark(s.state), s.mtu ?? '-', s.fdbEntries, s.neighEntries, s.details.join('; ')])));
      if (st.mtu) process.stdout.write(mtuLine(st.mtu));
      process.stdout.write(`vxlan guard allows: ${st.guardAllow.join(', ') || '(nobody)'}\n`);
      if (st.strayHostLinks.length) process.stdout.write(`stray host links: ${st.strayHostLinks.join(', ')}\n`);
      if (!st.active) process.stdout.write('overlay not active yet (waiting for gossip to sync)\n');
      if (st.lastError) process.stdout.write(`last reconcile failed: ${st.lastError.message ?? ''}\n`);
    });
  const mtu = new Command('mtu')
    .description('the automatic overlay MTU on this node: smallest path to any peer, each peer\'s path MTU')
    .option('--probe', 'probe every peer now (after an underlay change) and show the result')
    .option('--format <fmt>', 'table|json')
    .action(async (o: { probe?: boolean; format?: string }) => {
      const c = nodeClientFor(globals());
      const r = o.probe ? await c.call<{ node: string; mtu: MtuView | null }>('POST', '/v1/overlay/mtu/probe')
        : await c.call<{ node: string; mtu: MtuView | null }>('GET', '/v1/overlay/mtu');
      if (parseFormat(o.format) === 'json') return printJson(r);
      process.stdout.write(r.mtu ? mtuLine(r.mtu) : 'overlay not started yet\n');
    });
  return [fdb, sandbox, mtu];
}
