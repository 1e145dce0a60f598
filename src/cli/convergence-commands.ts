/**
 * Convergence receipts in netctl: the line `service create/scale/update/rollback` prints after
 * "verify: Service converged" (`programmed on 3/3 nodes in 640 ms (slowest n2)`), and
 * `netctl debug convergence` (the last changes with per-node times). Both read the agent netctl
 * talks to (`GET /v1/convergence`), which collects every node's acks from the gossip tables
 * (src/agent/drain/convergence.ts, src/core/convergence).
 */
import { Command } from 'commander';
import type { ChangeView } from '../core/convergence/collect.js';
import { formatServiceConvergence, serviceConvergence } from '../core/convergence/collect.js';
import { agentOf, clientFor, nodeClientFor, type GlobalOpts } from './context.js';
import { formatted, table } from './format.js';

interface ConvergenceView {
  node: string;
  acker: { programmed: number; writes: number; deletes: number; held: number; errors: number; live: number; outstanding: Array<{ network: string; task: string; forMs: number }> };
  indexed: number;
  changes: ChangeView[];
}

/** Tasks as the manager lists them (the fields read here). */
interface TaskRow {
  id: string;
  name: string;
  desiredState: string;
  state: string;
  updatedAt: string;
  /** The node's name (null while unassigned). */
  node?: string | null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Which running tasks of the service changed since `since` and have no change seen yet: the
 * receipt waits for them (their acks may still be on their way to this node).
 */
export function tasksWithoutChange(tasks: readonly TaskRow[], service: string, since: number, changes: readonly ChangeView[]): string[] {
  const ids = changes.map((c) => c.task);
  const same = (a: string, b: string) => a.startsWith(b) || b.startsWith(a);
  return tasks
    .filter((t) => t.name.startsWith(`${service}.`) && t.desiredState === 'running' && t.state === 'running' && Date.parse(t.updatedAt) >= since)
    .filter((t) => !ids.some((id) => same(id, t.id)))
    .map((t) => t.name);
}

/**
 * Prints the receipt of the service's changes since `since` (epoch ms, netctl's clock: the same
 * machine or NTP-close to the nodes). Waits up to `waitMs` for every new running task to show up
 * with complete acks; after that prints what is known (who is pending) — a receipt, not a gate.
 */
export async function printReceipt(g: GlobalOpts, managerCall: <T>(m: string, p: string) => Promise<T>, service: string, since: number, waitMs = 10_000): Promise<void> {
  let c = clientFor(g);
  let asked: string | null = null;
  const deadline = Date.now() + waitMs;
  for (;;) {
    const v = await c.call<ConvergenceView>('GET', `/v1/convergence?service=${encodeURIComponent(service)}&since=${since}&limit=1000`);
    const tasks = await managerCall<TaskRow[]>('GET', '/tasks');
    const missing = tasksWithoutChange(tasks, service, since, v.changes);
    const s = serviceConvergence(v.changes);
    // A node holds a network's acks only while it is on that network (it joins with its first task there): the
    // agent netctl talks to may run none of the service's tasks and never see a receipt. Ask, once, the node of
    // a new task instead (its lab socket, or through the local agent's peer API).
    const host = tasks.find((t) => missing.includes(t.name) && t.node)?.node;
    if (s.changes === 0 && asked === null && host && host !== v.node) {
      asked = host;
      c = agentOf(g, host);
      continue;
    }
    const done = missing.length === 0 && (s.changes === 0 || s.totalMs !== null);
    if (done || Date.now() > deadline) {
      if (s.changes === 0 && missing.length === 0) return; // nothing was added or changed (e.g. a scale down: the drains confirm removals)
      process.stderr.write(`${formatServiceConvergence(s)}${missing.length ? ` (no receipt yet for ${missing.join(', ')})` : ''}\n`);
      return;
    }
    await sleep(200);
  }
}

function nodeTimes(c: ChangeView): string {
  return [...c.acks.map((a) => `${a.node} ${a.ms}ms`), ...c.pending.map((p) => `${p} -`)].join(', ');
}

export function convergenceCommand(globals: () => GlobalOpts): Command {
  return new Command('convergence')
    .description('the last endpoint changes and when each node\'s LB and DNS held them (per-node ms from publication)')
    .option('--service <name>', 'only this service')
    .option('--limit <n>', 'at most this many changes', '20')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.service}}\')')
    .action(async (o: { service?: string; limit: string; format?: string }) => {
      const q = new URLSearchParams({ limit: o.limit });
      if (o.service) q.set('service', o.service);
      const v = await nodeClientFor(globals()).call<ConvergenceView>('GET', `/v1/convergence?${q.toString()}`);
      if (formatted(v.changes, o.format)) return;
      process.stdout.write(table(['STARTED', 'SERVICE', 'NETWORK', 'TASK', 'NODES', 'TOTAL', 'SLOWEST', 'PER NODE'], v.changes.map((c) => [
        new Date(c.startedAt).toISOString().slice(11, 23), c.service, c.network.slice(0, 12), c.task.slice(0, 12),
        `${c.acks.length}/${c.acks.length + c.pending.length}`, c.totalMs === null ? 'pending' : `${c.totalMs} ms`, c.slowest ?? '-', nodeTimes(c),
      ])));
    });
}
