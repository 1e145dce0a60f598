/** `netctl node ...` (docker node ls/inspect/update/rm), through the local agent to the manager. */
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import { clientFor, type GlobalOpts } from './context.js';
import { managerCall } from './cluster-commands.js';
import { formatted, isTemplate, parseFormat, printFormatted, printJson, table } from './format.js';
import { NODE_PS_HEADERS, nodePretty, nodePsRows, type NodeRecordView, type TaskRow } from './node-views.js';

interface NodeView {
  id: string;
  hostname: string;
  role: string;
  availability: string;
  state: string;
  addr: string;
  labels: Record<string, string>;
  /** docker's MANAGER STATUS from the manager (leader / reachable / unreachable); null for workers. */
  managerStatus?: 'leader' | 'reachable' | 'unreachable' | null;
}

const cap = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * The `node ls` table rows (pure): sorted by hostname, this node marked `*`, MANAGER STATUS
 * as docker shows it (Leader / Reachable / Unreachable; empty for workers).
 */
export function nodeRows(list: readonly NodeView[], selfId: string | null): string[][] {
  return [...list].sort((a, b) => a.hostname.localeCompare(b.hostname)).map((n) => [
    `${n.id.slice(0, 12)}${n.id === selfId ? ' *' : ''}`, n.hostname, cap(n.state), cap(n.availability),
    n.managerStatus ? cap(n.managerStatus) : '', n.role, n.addr,
  ]);
}

export const NODE_LS_HEADERS = ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ROLE', 'ADDRESS'];

/** `k=v` pairs into a record (a bare `k` gets the empty value, as docker does). */
export function parseKv(list: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of list ?? []) {
    const i = s.indexOf('=');
    const k = i < 0 ? s : s.slice(0, i);
    if (!k) throw new MeshError('MESHD_BAD_ARGUMENT', `${what}: empty key in ${JSON.stringify(s)}`);
    out[k] = i < 0 ? '' : s.slice(i + 1);
  }
  return out;
}

export const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function nodeCommand(globals: () => GlobalOpts): Command {
  const call = managerCall(globals);
  const node = new Command('node').description('nodes of the cluster (manager only)');
  node
    .command('ls')
    .description('list nodes; STATUS comes from gossip membership (Down = declared dead); MANAGER STATUS: Leader / Reachable / Unreachable (managers only; JSON field managerStatus)')
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const list = await call<NodeView[]>('GET', '/nodes');
      if (formatted(list, o.format)) return;
      if (o.quiet) return void process.stdout.write(list.map((n) => `${n.id}\n`).join(''));
      const me = await clientFor(globals()).call<{ nodeId: string | null }>('GET', '/v1/cluster').catch(() => ({ nodeId: null }));
      process.stdout.write(table(NODE_LS_HEADERS, nodeRows(list, me.nodeId)));
    });
  node
    .command('inspect')
    .description('show nodes as JSON (resources, platform, engine and its labels included); --pretty: docker\'s human layout')
    .argument('<node...>', 'ids or hostnames')
    .option('--pretty', 'human-readable')
    .option('-f, --format <tpl>', 'json (default), or a template per node, e.g. \'{{.hostname}} {{json .resources}}\'')
    .action(async (refs: string[], o: { pretty?: boolean; format?: string }) => {
      const list = await Promise.all(refs.map((r) => call<NodeRecordView>('GET', `/nodes/${encodeURIComponent(r)}`)));
      if (!o.pretty) return printFormatted(list, o.format);
      process.stdout.write(list.map(nodePretty).join('\n'));
    });
  node
    .command('ps')
    .description('tasks on a node, with history (default: this node)')
    .argument('[node]', 'id or hostname')
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (ref: string | undefined, o: { quiet?: boolean; format?: string }) => {
      const fmt = o.format !== undefined && isTemplate(o.format) ? 'template' : parseFormat(o.format);
      let target = ref;
      if (target === undefined) {
        const me = await clientFor(globals()).call<{ nodeId: string | null }>('GET', '/v1/cluster');
        if (!me.nodeId) throw new MeshError('MESHD_NOT_READY', 'this node is not part of a cluster: name a node');
        target = me.nodeId;
      }
      const list = await call<TaskRow[]>('GET', `/tasks?node=${encodeURIComponent(target)}`);
      if (fmt !== 'table' && formatted(list, o.format)) return;
      if (o.quiet) return void process.stdout.write(list.map((t) => `${t.id}\n`).join(''));
      process.stdout.write(table(NODE_PS_HEADERS, nodePsRows(list)));
    });
  /** docker node promote / demote: the role change goes through node update (with the node's version). */
  const setRole = async (ref: string, role: 'manager' | 'worker'): Promise<void> => {
    const cur = await call<NodeRecordView & { version: number }>('GET', `/nodes/${encodeURIComponent(ref)}`);
    if (cur.role === role) return void process.stdout.write(`Node ${ref} is already a ${role}.\n`);
    await call('POST', `/nodes/${encodeURIComponent(ref)}`, { role, version: cur.version });
    process.stdout.write(role === 'manager' ? `Node ${ref} promoted to a manager in the cluster.\n` : `Manager ${ref} demoted in the cluster.\n`);
  };
  node
    .command('promote')
    .description('make workers managers (needs a cluster on a shared etcd store; the node takes the role on its next round)')
    .argument('<node...>', 'ids or hostnames')
    .action(async (refs: string[]) => {
      for (const r of refs) await setRole(r, 'manager');
    });
  node
    .command('demote')
    .description('make managers workers (the last manager is never demoted)')
    .argument('<node...>', 'ids or hostnames')
    .action(async (refs: string[]) => {
      for (const r of refs) await setRole(r, 'worker');
    });
  node
    .command('update')
    .description('change availability or labels of a node')
    .argument('<node>', 'id or hostname')
    .option('--availability <a>', 'active|pause|drain (drain moves every task away)')
    .option('--label-add <k=v>', 'add or set a label (repeatable)', collect)
    .option('--label-rm <k>', 'remove a label (repeatable)', collect)
    .action(async (ref: string, o: { availability?: string; labelAdd?: string[]; labelRm?: string[] }) => {
      const body: Record<string, unknown> = {};
      if (o.availability !== undefined) body.availability = o.availability;
      if (o.labelAdd) body.labelAdd = parseKv(o.labelAdd, '--label-add');
      if (o.labelRm) body.labelRm = o.labelRm;
      if (!Object.keys(body).length) throw new MeshError('MESHD_BAD_ARGUMENT', 'nothing to update: give --availability, --label-add or --label-rm');
      const n = await call<NodeView>('POST', `/nodes/${encodeURIComponent(ref)}`, body);
      process.stdout.write(`${n.id}\n`);
    });
  node
    .command('rm')
    .description('remove nodes from the cluster (their certificates are revoked)')
    .argument('<node...>', 'ids or hostnames')
    .option('-f, --force', 'also remove a manager')
    .action(async (refs: string[], o: { force?: boolean }) => {
      for (const r of refs) {
        await call('DELETE', `/nodes/${encodeURIComponent(r)}${o.force ? '?force=1' : ''}`);
        process.stdout.write(`${r}\n`);
      }
    });
  return node;
}
