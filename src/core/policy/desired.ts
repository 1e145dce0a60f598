/**
 * Policies between services, the pure half (issue #19): from a local task's assignment (its
 * service's allow-from, its networks and whether each is default-deny) and the `endpoints`
 * gossip tables (every task's address on each network, tied to its service there), the filter
 * the task's namespace must hold.
 *
 * Meaning, per attachment of the task to a network N (address A):
 * - N default-deny: new connections to A are accepted only from addresses of tasks, on N, of
 *   the services the task's allow-from names (allow-from unset → nobody);
 * - N normal and allow-from set: the same rule; allow-from unset: open (no rule at all);
 * - the built-in `ingress` network is never filtered: a published port is itself the decision
 *   to accept the routing mesh's traffic (its sources are ingress sandboxes after SNAT, or the
 *   outside client with `policy=local`, never a service's task). Close it by not publishing.
 *
 * Rules are keyed by the destination address (the task's own address on N), so a task attached
 * to two networks is filtered per network without knowing its interface names. Sources are every
 * endpoint of an allowed service on N whatever its state (starting, running, draining): a task
 * is a client before it is a backend. The task's own service is not implicitly allowed: a
 * service whose tasks talk to each other lists itself (as a NetworkPolicy would have it).
 */
import { INGRESS_NETWORK } from '../endpoints.js';

/** What the policy reads of one endpoint record. */
export interface PolicyEndpoint {
  serviceName: string;
  ip: string;
  /** The endpoint's IPv6 address on a dual-stack network (issue #19 item 2). */
  ip6?: string | undefined;
}

/** What the policy reads of a local task's assignment. */
export interface PolicyTask {
  taskId: string;
  serviceName: string;
  /** The service's allow-from; undefined = not set. */
  allowFrom?: readonly string[] | undefined;
  attachments: ReadonlyArray<{ networkId: string; networkName: string; ip: string; ip6?: string | undefined; defaultDeny?: boolean | undefined }>;
}

export type RuleMode = 'default-deny' | 'allow-from';

/** One filtered attachment: connections to `daddr` are accepted only from `allowed`. */
export interface PolicyRule {
  networkId: string;
  networkName: string;
  /** The task's own address on the network (the destination the rule guards). */
  daddr: string;
  mode: RuleMode;
  /** The allow-from list the rule came from ([] on a default-deny network without one). */
  allowFrom: readonly string[];
  /** Allowed source addresses, sorted (numerically): the nft set's elements. */
  allowed: readonly string[];
  /**
   * Dual stack (issue #19 item 2 part 2): the task's IPv6 address on the network and the allowed
   * services' IPv6 addresses there. The filter is keyed by address, so an IPv6 destination gets
   * its own rule: without it a denied service could reach the task over IPv6 (fail open).
   */
  daddr6?: string;
  allowed6?: readonly string[];
}

/** A task namespace's whole policy: the service it guards and its rules (sorted by network id). */
export interface NsPolicy {
  service: string;
  rules: readonly PolicyRule[];
}

/** Sorts dotted IPv4 addresses numerically (stable rendering and diffs). */
export function sortIps(ips: Iterable<string>): string[] {
  const key = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  return [...new Set(ips)].sort((a, b) => key(a) - key(b));
}

/**
 * The namespace's policy, or null when nothing is filtered (no table at all: an open task costs
 * nothing). `endpointsOn(networkId)`: every endpoint on that network (any node).
 */
export function desiredPolicy(task: PolicyTask, endpointsOn: (networkId: string) => Iterable<PolicyEndpoint>): NsPolicy | null {
  const rules: PolicyRule[] = [];
  for (const att of task.attachments) {
    if (att.networkId === INGRESS_NETWORK) continue;
    if (!att.defaultDeny && task.allowFrom === undefined) continue;
    const allowFrom = task.allowFrom ?? [];
    const names = new Set(allowFrom);
    const ips: string[] = [];
    const ips6: string[] = [];
    if (names.size) {
      for (const e of endpointsOn(att.networkId)) {
        if (!names.has(e.serviceName)) continue;
        if (e.ip !== att.ip) ips.push(e.ip);
        if (att.ip6 !== undefined && e.ip6 !== undefined && e.ip6 !== att.ip6) ips6.push(e.ip6);
      }
    }
    rules.push({
      networkId: att.networkId, networkName: att.networkName, daddr: att.ip,
      mode: att.defaultDeny ? 'default-deny' : 'allow-from', allowFrom: [...allowFrom], allowed: sortIps(ips),
      ...(att.ip6 !== undefined ? { daddr6: att.ip6, allowed6: [...new Set(ips6)].sort() } : {}),
    });
  }
  if (!rules.length) return null;
  rules.sort((a, b) => (a.networkId < b.networkId ? -1 : a.networkId > b.networkId ? 1 : 0));
  return { service: task.serviceName, rules };
}

/** Same rule structure (everything but the allowed elements): an element-only change can be a delta. */
export function sameShape(a: NsPolicy, b: NsPolicy): boolean {
  if (a.service !== b.service || a.rules.length !== b.rules.length) return false;
  return a.rules.every((r, i) => {
    const s = b.rules[i]!;
    return r.networkId === s.networkId && r.networkName === s.networkName && r.daddr === s.daddr && r.daddr6 === s.daddr6 && r.mode === s.mode && r.allowFrom.join() === s.allowFrom.join();
  });
}

/**
 * Why a connection from `saddr` to `daddr` is refused by this policy, or null when it is
 * accepted (debug trace: "denied by policy of web"). Only new connections are judged.
 */
export function verdict(p: NsPolicy | null, daddr: string, saddr: string): string | null {
  const r = p?.rules.find((x) => x.daddr === daddr || (x.daddr6 !== undefined && x.daddr6 === daddr));
  if (!p || !r || saddr === daddr || r.allowed.includes(saddr) || (r.allowed6 ?? []).includes(saddr)) return null;
  const why = r.mode === 'default-deny'
    ? `network ${r.networkName} is default-deny${r.allowFrom.length ? ` and allow-from is ${r.allowFrom.join(',')}` : ' and no allow-from is set'}`
    : `allow-from is ${r.allowFrom.length ? r.allowFrom.join(',') : '(nobody)'}`;
  return `denied by policy of ${p.service}: ${saddr} is not a task of an allowed service (${why})`;
}
