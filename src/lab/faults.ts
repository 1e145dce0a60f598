/**
 * Fault injection without netem (ARCHITECTURE §3): nftables rules inside lab host
 * namespaces. Each node gets one table `meshd_fault` (inet); every change replaces it in one
 * `nft -f -` transaction per node. Partitions drop traffic between groups; `udp` blocks
 * drop only UDP (so TCP fallback can be exercised); `oneway` drops only what a node receives
 * from the others; `loss` drops a percentage with numgen. `heal` removes the tables.
 */
import { MeshError } from '../core/errors.js';
import type { Exec } from '../adapters/exec.js';
import { requireState, type LabState } from './lab.js';

export const FAULT_TABLE = 'meshd_fault';

export interface FaultRule {
  /** Drop packets from these addresses (empty = from anyone on the underlay). */
  from: string[];
  /** Only this protocol (default: all). */
  proto?: 'udp' | 'tcp';
  /** Drop this fraction in percent (default 100). */
  lossPercent?: number;
  /** Also drop what we send to `from` (a symmetric cut). */
  bothWays: boolean;
}

/** Renders the fault table for one node: pure, golden-tested. */
export function renderFaultTable(rules: FaultRule[]): string {
  const lines = [`table inet ${FAULT_TABLE}`, `delete table inet ${FAULT_TABLE}`, `table inet ${FAULT_TABLE} {`];
  const cond = (r: FaultRule, dir: 'saddr' | 'daddr') => {
    const parts: string[] = [];
    if (r.from.length) parts.push(`ip ${dir} { ${r.from.join(', ')} }`);
    else parts.push(`ip ${dir} 10.99.0.0/16`);
    if (r.proto) parts.push(`meta l4proto ${r.proto}`);
    if (r.lossPercent !== undefined && r.lossPercent < 100) parts.push(`numgen random mod 100 < ${Math.round(r.lossPercent)}`);
    return parts.join(' ');
  };
  lines.push('  chain in { type filter hook input priority -400; policy accept;');
  for (const r of rules) lines.push(`    ${cond(r, 'saddr')} counter drop`);
  lines.push('  }');
  lines.push('  chain out { type filter hook output priority -400; policy accept;');
  for (const r of rules) if (r.bothWays) lines.push(`    ${cond(r, 'daddr')} counter drop`);
  lines.push('  }', '}');
  return lines.join('\n') + '\n';
}

function nodeOf(state: LabState, name: string) {
  const n = state.nodes.find((x) => x.name === name);
  if (!n) throw new MeshError('MESHD_NODE_NOT_FOUND', `lab ${state.name} has no node ${name}`);
  return n;
}

async function applyRules(exec: Exec, netns: string, rules: FaultRule[]): Promise<void> {
  await exec.check('nft', ['-f', '-'], { netns, input: renderFaultTable(rules) });
}

/** Cuts the lab into groups (e.g. [[n1,n2],[n3,n4,n5]]): no traffic crosses between groups. */
export async function labPartition(exec: Exec, lab: string, groups: string[][], proto?: 'udp' | 'tcp'): Promise<void> {
  const state = requireState(lab);
  const seen = new Set<string>();
  for (const g of groups) for (const n of g) {
    nodeOf(state, n);
    if (seen.has(n)) throw new MeshError('MESHD_BAD_ARGUMENT', `node ${n} is in two groups`);
    seen.add(n);
  }
  await Promise.all(groups.flatMap((g, gi) => g.map((n) => {
    const others = groups.flatMap((o, oi) => (oi === gi ? [] : o)).map((x) => nodeOf(state, x).underlay);
    return applyRules(exec, nodeOf(state, n).netns, others.length ? [{ from: others, bothWays: true, ...(proto ? { proto } : {}) }] : []);
  })));
}

/** Drops (a share of) one node's traffic: UDP-only, inbound-only (one-way) or lossy. */
export async function labBlock(exec: Exec, lab: string, node: string, o: { proto?: 'udp' | 'tcp'; oneWay?: boolean; lossPercent?: number; from?: string[] }): Promise<void> {
  const state = requireState(lab);
  const n = nodeOf(state, node);
  const from = (o.from ?? []).map((x) => nodeOf(state, x).underlay);
  if (o.lossPercent !== undefined && !(o.lossPercent > 0 && o.lossPercent <= 100)) throw new MeshError('MESHD_BAD_ARGUMENT', 'loss must be in (0, 100]');
  const rule: FaultRule = { from, bothWays: !o.oneWay };
  if (o.proto) rule.proto = o.proto;
  if (o.lossPercent !== undefined) rule.lossPercent = o.lossPercent;
  await applyRules(exec, n.netns, [rule]);
}

/** Removes every fault table in the lab. */
export async function labHeal(exec: Exec, lab: string): Promise<void> {
  const state = requireState(lab);
  await Promise.all(state.nodes.map((n) => exec.run('nft', ['delete', 'table', 'inet', FAULT_TABLE], { netns: n.netns })));
}
