/**
 * `netctl debug dns NAME [--from TASK] [--type T]`: resolve a name exactly as a task would (its
 * networks), and say where the answer came from — registry entries with owner node and age — or
 * which upstream answered and what it said. `netctl debug dns-stats` shows the server's counters.
 * Both are subcommands of `netctl debug` (added there by netctl.ts).
 */
import { Command } from 'commander';
import { nodeClientFor, type GlobalOpts } from './context.js';
import { formatted, parseFormat, printJson, table } from './format.js';

interface Source {
  kind: string;
  network: string;
  name: string;
  owner?: string;
  ageMs: number;
  detail?: string;
}
interface DebugReply {
  node: string;
  from: { task: string; taskName: string | null; node: string; networks: string[] } | null;
  type: string;
  question: { name: string; type: number; networks: string[] };
  outcome: 'answer' | 'nodata' | 'nxdomain' | 'forward';
  records: Array<{ type: number; data: string; priority?: number; weight?: number; port?: number }>;
  additional?: Array<{ name: string; data: string }>;
  sources: Source[];
  note: string;
  upstream?: { address?: string; port?: number; ms: number; rcode: string; answers: string[]; note?: string } | null;
}

/** Human rendering of a debug reply (pure: tested with fixed input). */
export function renderDnsDebug(r: DebugReply): string {
  const lines: string[] = [];
  const who = r.from ? `task ${r.from.taskName ?? r.from.task} (on ${r.from.node})` : `node ${r.node}`;
  lines.push(`${r.question.name} ${r.type} as ${who}, networks: ${r.question.networks.join(', ') || '(none)'}`);
  if (r.outcome === 'forward') {
    const u = r.upstream;
    lines.push(`not a cluster name (${r.note})`);
    if (!u) lines.push('no upstream consulted');
    else if (u.address) {
      lines.push(`upstream ${u.address}:${u.port} answered ${u.rcode} in ${u.ms} ms`);
      for (const a of u.answers) lines.push(`  ${a}`);
    } else lines.push(`SERVFAIL: ${u.note ?? 'no upstream answered'}`);
    return lines.join('\n') + '\n';
  }
  if (r.outcome === 'answer') {
    // SRV: `priority weight port target` as dig prints it, then the targets' addresses.
    const srv = (x: DebugReply['records'][number]): string => (x.port !== undefined ? `${x.priority ?? 0} ${x.weight ?? 0} ${x.port} ${x.data}` : x.data);
    if (r.records.some((x) => x.port !== undefined)) {
      lines.push(`answer (${r.note}):`);
      for (const x of r.records) lines.push(`  ${srv(x)}`);
      for (const a of r.additional ?? []) lines.push(`  additional: ${a.name} A ${a.data}`);
    } else lines.push(`answer: ${r.records.map(srv).join(' ')}  (${r.note})`);
  } else lines.push(r.note);
  if (r.sources.length) {
    lines.push('');
    lines.push(table(['SOURCE', 'NETWORK', 'NAME', 'OWNER', 'AGE', 'DETAIL'], r.sources.map((s) => [s.kind, s.network, s.name, s.owner ?? '-', `${(s.ageMs / 1000).toFixed(1)}s`, s.detail ?? ''])).trimEnd());
  }
  return lines.join('\n') + '\n';
}

export function dnsDebugCommands(globals: () => GlobalOpts): Command[] {
  const dns = new Command('dns')
    .description('resolve NAME as a task would, and show where the answer came from')
    .argument('<name>', 'name to resolve, e.g. web, tasks.web, web.app, 1.web, _80._tcp.web (--type SRV), 10.0.1.5.in-addr.arpa')
    .option('--from <task>', 'resolve with the networks of this task (id, id prefix or name); default: this node\'s tasks')
    .option('--type <type>', 'query type (A, AAAA, PTR, SRV, ANY, or a number)', 'A')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .addHelpText('after', '\nExamples:\n  netctl --node n2 debug dns tasks.web --from web.1\n  netctl debug dns example.org --format json')
    .action(async (name: string, o: { from?: string; type: string; format?: string }) => {
      const q = new URLSearchParams({ name, type: o.type });
      if (o.from) q.set('task', o.from);
      const r = await nodeClientFor(globals()).call<DebugReply>('GET', `/v1/dns/debug?${q.toString()}`);
      if (formatted(r, o.format)) return;
      process.stdout.write(renderDnsDebug(r));
    });
  const stats = new Command('dns-stats')
    .description('embedded DNS counters: queries, answers by rcode, forwards, cache, latency, sandboxes served')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const s = await nodeClientFor(globals()).call<Record<string, unknown>>('GET', '/v1/dns/stats');
      if (formatted(s, o.format)) return;
      const flat: Array<[string, string]> = [];
      const walk = (prefix: string, v: unknown): void => {
        if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(prefix ? `${prefix}.${k}` : k, x);
        else flat.push([prefix, typeof v === 'object' ? JSON.stringify(v) : String(v)]);
      };
      walk('', s);
      process.stdout.write(table(['COUNTER', 'VALUE'], flat));
    });
  return [dns, stats];
}
