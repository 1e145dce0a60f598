/**
 * The policy hop of `netctl debug trace --from TASK --to SERVICE:PORT` (issue #19): for every
 * active backend the VIP may pick, the policy its own node holds for that task (GET
 * /v1/policy/status on that node) judged against the source task's address on the backend's
 * network — "denied by policy of web: …" when the backend's filter would refuse the
 * connection, with the rule that refuses it. Nodes are found from the gossip membership; a
 * node that cannot be asked is a hop saying so, never a crash.
 */
import type { ApiClient } from '../adapters/api/client.js';
import { hostOfAddr } from '../core/hostport.js';
import { verdict, type NsPolicy } from '../core/policy/desired.js';
import { agentOf, type GlobalOpts } from './context.js';

/** One hop of `debug trace` (defined here so trace-commands.ts and this file share it without an import cycle). */
export interface Hop {
  hop: string;
  where: string;
  detail: string;
  ok: boolean;
  /** A policy between services refuses the connection here. */
  denied?: boolean;
}

interface PolicyNs { task: string; name: string; service: string; policy: NsPolicy | null; applied: boolean; error: string | null }
interface PolicyStatus { node: string; namespaces: PolicyNs[] }
interface Member { name: string; addr: string; state: string }

/**
 * One policy hop per active backend whose node holds a filter for it (open backends add none).
 * `sourceIps`: the source task's addresses of the backends' family (network name → address; the
 * IPv6 ones for an IPv6 VIP's backends).
 */
export async function policyHops(g: GlobalOpts, local: ApiClient, sourceIps: Readonly<Record<string, string>>, backends: ReadonlyArray<{ task: string; target: string; state: string }>): Promise<Hop[]> {
  const members = await local.call<Member[]>('GET', '/v1/gossip/members');
  const status = new Map<string, PolicyStatus | string>();
  for (const m of members.filter((x) => x.state === 'alive' || x.state === 'suspect')) {
    try {
      status.set(m.name, await agentOf(g, m.name).call<PolicyStatus>('GET', '/v1/policy/status'));
    } catch (e) {
      status.set(m.name, (e as Error).message);
    }
  }
  const hops: Hop[] = [];
  for (const b of backends.filter((x) => x.state === 'active')) {
    const ip = hostOfAddr(b.target); // [v6]:port for an IPv6 VIP's backend
    let found: { node: string; ns: PolicyNs } | undefined;
    for (const [node, st] of status) {
      const ns = typeof st === 'string' ? undefined : st.namespaces.find((n) => n.task === b.task);
      if (ns) found = { node, ns };
    }
    if (!found) {
      const down = [...status].filter(([, st]) => typeof st === 'string').map(([n, st]) => `${n}: ${st as string}`);
      if (down.length) hops.push({ hop: 'policy', where: '?', detail: `task ${b.task.slice(0, 12)}: its node's policy could not be read (${down.join('; ')})`, ok: false });
      continue;
    }
    const { node, ns } = found;
    const rule = ns.policy?.rules.find((r) => r.daddr === ip || (r.daddr6 !== undefined && r.daddr6 === ip));
    if (!rule) continue;
    const saddr = sourceIps[rule.networkName];
    const why = saddr ? verdict(ns.policy, ip, saddr) : `denied by policy of ${ns.service}: the source task has no address on ${rule.networkName}`;
    const drift = !ns.applied ? ` — NOT APPLIED${ns.error ? `: ${ns.error}` : ''}` : '';
    hops.push(why
      ? { hop: 'policy', where: node, detail: `${ns.name} (${ip}): ${why}${drift}`, ok: ns.applied, denied: true }
      : { hop: 'policy', where: node, detail: `${ns.name} (${ip}): allowed by policy of ${ns.service} (${rule.mode}, allow-from ${rule.allowFrom.join(',') || '(nobody)'})${drift}`, ok: ns.applied });
  }
  return hops;
}
