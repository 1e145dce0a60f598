/** `netctl debug ...`: what the mesh believes, per node. */
import { Command } from 'commander';
import { nodeClientFor, type GlobalOpts } from './context.js';
import { formatted, parseFormat, printJson, table } from './format.js';
import { convergenceCommand } from './convergence-commands.js';

interface MemberRow {
  name: string;
  addr: string;
  state: string;
  incarnation: number;
  health?: number;
}
interface TableDump {
  network: string;
  nodes: string[];
  entries: Array<{ table: string; key: string; value: string; owner: string; ltime: number }>;
}

export function debugCommand(globals: () => GlobalOpts): Command {
  const debug = new Command('debug').description('show what the mesh believes and what the kernel holds, on one node');

  debug
    .command('members')
    .description('gossip membership as this node sees it')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const rows = await nodeClientFor(globals()).call<MemberRow[]>('GET', '/v1/gossip/members');
      if (formatted(rows, o.format)) return;
      process.stdout.write(table(['NAME', 'ADDRESS', 'STATE', 'INCARNATION', 'HEALTH'], rows.map((m) => [m.name, m.addr, m.state, m.incarnation, m.health ?? ''])));
    });

  debug
    .command('tables')
    .description('replicated per-network tables as this node holds them')
    .option('--network <net>', 'only this network')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { network?: string; format?: string }) => {
      const q = o.network ? `?network=${encodeURIComponent(o.network)}` : '';
      const dump = await nodeClientFor(globals()).call<TableDump[]>('GET', `/v1/gossip/tables${q}`);
      if (formatted(dump, o.format)) return;
      const rows = dump.flatMap((d) => (d.entries.length ? d.entries.map((e) => [d.network, e.table, e.key, e.owner, e.ltime, e.value.length > 60 ? e.value.slice(0, 57) + '...' : e.value]) : [[d.network, '-', '-', '-', '-', `(no entries; nodes: ${d.nodes.join(',')})`]]));
      process.stdout.write(table(['NETWORK', 'TABLE', 'KEY', 'OWNER', 'LTIME', 'VALUE'], rows));
    });

  debug
    .command('gossip')
    .description('gossip counters: packets, bytes, streams, probes, drops by reason')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const m = await nodeClientFor(globals()).call<Record<string, unknown>>('GET', '/v1/gossip/metrics');
      if (formatted(m, o.format)) return;
      const flat: Array<[string, unknown]> = [];
      for (const [k, v] of Object.entries(m)) {
        if (v && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) flat.push([`${k}.${k2}`, v2]);
        else flat.push([k, v]);
      }
      process.stdout.write(table(['COUNTER', 'VALUE'], flat.map(([k, v]) => [k, String(v)])));
    });

  debug.addCommand(convergenceCommand(globals));

  return debug;
}
