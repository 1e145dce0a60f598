/**
 * `netctl debug lb [--service S] [--format json]`: the node's load balancer, desired vs kernel
 * per namespace (task sandboxes with VIPs, the ingress sandbox with published ports), tied to
 * services and tasks. Exit code 0 even with drift: drift is information, shown per line.
 * A subcommand of `netctl debug` (added there by netctl.ts).
 */
import { Command } from 'commander';
import type { LbNsStatus } from '../api/lb.js';
import { nodeClientFor, type GlobalOpts } from './context.js';
import { formatted, parseFormat, printJson, table } from './format.js';

export interface LbStatusReply {
  node: string;
  backend: string;
  active: boolean;
  applies: number;
  badRecords: number;
  ingress: { ip: string; mac: string; sandbox: string; hostTable: string; attachments: Record<string, { ip: string }> } | null;
  namespaces: LbNsStatus[];
}

/** Human rendering (pure). */
export function renderLbStatus(r: LbStatusReply): string {
  const out: string[] = [];
  out.push(`node ${r.node}: ${r.backend} dataplane, ${r.active ? 'active' : 'NOT ACTIVE (waiting for the overlay)'}, ${r.namespaces.length} namespace(s), ${r.applies} applies`);
  if (r.ingress) out.push(`ingress: sandbox ${r.ingress.sandbox} at ${r.ingress.ip}, ${Object.keys(r.ingress.attachments).length} local task attachment(s)`);
  else out.push('ingress: not configured on this node (PUT /v1/ingress)');
  const rows: Array<Array<string>> = [];
  for (const ns of r.namespaces) {
    const where = ns.kind === 'ingress' ? `ingress ${ns.netns}` : ns.kind === 'host' ? `host-mode ports in the node's namespace` : `task ${ns.task} (${ns.netns})`;
    if (ns.frontends.length === 0) rows.push([where, '-', '-', '-', '-', ns.drift.length ? 'DRIFT' : 'ok']);
    for (const f of ns.frontends) {
      const want = f.backends.map((b) => `${b.target}${b.state === 'draining' ? '(draining)' : ''}`).join(' ') || '(none: reject)';
      // IPVS holds draining tasks at weight 0: shown, so a real left behind or missing is visible.
      const have = f.kernel === null ? '(absent)' : (f.kernel.join(' ') || '(none: reject)') + (f.kernelDraining?.length ? ` ${f.kernelDraining.map((t) => `${t}(weight 0)`).join(' ')}` : '');
      const drift = ns.drift.some((d) => d.includes(f.key)) ? 'DRIFT' : 'ok';
      rows.push([where, f.key, f.service, want, have, drift]);
    }
  }
  out.push('');
  out.push(table(['NAMESPACE', 'FRONTEND', 'SERVICE', 'DESIRED', 'KERNEL', 'STATE'], rows).trimEnd());
  // Every drift line, including those of no frontend (IPVS: a stray service no mark routes to).
  const problems = r.namespaces.flatMap((ns) => [
    ...ns.drift.map((d) => `${ns.netns}: ${d}`),
    ...(ns.error ? [`${ns.netns}: last apply failed: ${ns.error}`] : []),
    ...ns.conflicts.map((c) => `${ns.netns}: conflict, not programmed: ${c}`),
    ...(ns.held ?? []).map((h) => `${ns.netns}: held back until the overlay programs it: ${h}`),
  ]);
  if (problems.length) out.push('', ...problems);
  return out.join('\n') + '\n';
}

export function lbDebugCommand(globals: () => GlobalOpts): Command {
  return new Command('lb')
    .description('load balancer: desired vs kernel per namespace (VIPs in task sandboxes, published ports in the ingress sandbox)')
    .option('--service <s>', 'only this service (id or name)')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .addHelpText('after', '\nExamples:\n  netctl --lab demo --node n2 debug lb --service web\n  netctl debug lb --format json')
    .action(async (o: { service?: string; format?: string }) => {
      const q = o.service ? `?${new URLSearchParams({ service: o.service }).toString()}` : '';
      const r = await nodeClientFor(globals()).call<LbStatusReply>('GET', `/v1/lb/status${q}`);
      if (formatted(r, o.format)) return;
      process.stdout.write(renderLbStatus(r));
    });
}
