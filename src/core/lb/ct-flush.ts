/**
 * Stale conntrack entries of removed backends (kube-proxy's `deleteEndpointConnections`): which
 * NAT bindings to delete after an apply took backends out of a frontend, and the `conntrack -R`
 * batch that deletes them. Pure.
 *
 * Why: NAT is decided on a flow's FIRST packet; the conntrack entry keeps steering every later
 * packet of the flow to the backend it picked, whatever the rules say afterwards. When a node
 * crashes, its tasks vanish without a drain (nothing on them answers, nothing sends an RST):
 * - UDP: every new datagram of the same 5-tuple refreshes the entry (300 s idle timeout) and goes
 *   to the dead address, forever while the client keeps sending (DNS resolvers, syslog, statsd);
 * - TCP: the nft rules never see an established flow again (nat chains run for a conntrack's
 *   first packet only; the `empty-vips` reject matches `ct state new`), so the client
 *   retransmits into the void until `tcp_retries2` gives up (~15 min) — the entry itself lives
 *   a day (timeouts.ts). With the entry deleted, the next retransmit is picked up as a NEW
 *   conntrack (nf_conntrack_tcp_loose=1, the kernel default), DNATed to a live backend (which
 *   answers RST: it has no such socket) or refused by the empty-service reject (RST): the client
 *   learns at its next retransmit, not 15 min later.
 * So TCP is flushed too, unlike kube-proxy (UDP only: it leaves TCP to the client's timeouts).
 * That is safe because only the FINAL removal flushes: a draining backend (and a backend outside
 * the preferred locality tier) stays in the frontend's `draining` list, so it is not stale, and the
 * worker deletes a drained task's records only after its stop (agent/worker/removal.ts): by the
 * time a backend is removed, nothing on it finishes a connection any more. The one TCP flow this
 * can cut that would have lived: a backend whose node was declared dead while only partitioned,
 * if the partition heals before the client gives up — the overlay has dropped its entries by then
 * anyway, and the record comes back as a new backend.
 *
 * Scope of one deletion: original destination = the frontend (VIP + port, or any local address +
 * published port for the routing mesh), protocol, reply source = the removed backend's address
 * and target port. Nothing else in the namespace is touched (the node's own namespace in host
 * publish mode included).
 */
import type { LbDiff } from './diff.js';
import { isV6, type Frontend, type LbDesired, type Proto, type Target } from './model.js';

/** One removed backend of one frontend: the conntrack entries to delete. */
export interface StaleTarget {
  family: 'ipv4' | 'ipv6';
  proto: Proto;
  /** VIP frontends: the VIP (original destination). Absent for a published port (any local address). */
  vip?: string;
  /** VIP port or published port (original destination port). */
  port: number;
  /** The removed backend (reply source address and port). */
  ip: string;
  targetPort: number;
}

const targetKey = (t: Target): string => `${t.ip} ${t.port}`;

function stale(f: Frontend, gone: Iterable<Target>, out: StaleTarget[]): void {
  for (const t of gone) {
    out.push({ family: isV6(f) ? 'ipv6' : 'ipv4', proto: f.proto, ...(f.kind === 'vip' && f.vip !== undefined ? { vip: f.vip } : {}), port: f.port, ip: t.ip, targetPort: t.port });
  }
}

/** Targets (active or draining) of `before` that `after` holds in neither list. */
function goneFrom(before: Frontend, after: Frontend | undefined): Target[] {
  const keep = new Set<string>();
  if (after) for (const t of [...after.targets, ...after.draining]) keep.add(targetKey(t));
  return [...before.targets, ...before.draining].filter((t) => !keep.has(targetKey(t)));
}

/**
 * Backends an apply of `d` takes out of frontends: every target of a removed frontend, and the
 * targets of a changed frontend that are neither active nor draining after it. O(diff).
 * A backend that turns draining, changes weight or stays is not stale.
 */
export function staleTargets(d: LbDiff): StaleTarget[] {
  const out: StaleTarget[] = [];
  for (const f of d.removed) stale(f, goneFrom(f, undefined), out);
  for (const c of d.changed) stale(c.before, goneFrom(c.before, c.after), out);
  return out;
}

/** Arguments of one `conntrack -D` line (in the `-R` batch syntax). */
export function conntrackDeleteArgs(s: StaleTarget): string[] {
  return [
    '-D', '-f', s.family, '-p', s.proto,
    ...(s.vip !== undefined ? ['--orig-dst', s.vip] : []),
    '--orig-port-dst', String(s.port),
    '--reply-src', s.ip, '--reply-port-src', String(s.targetPort),
  ];
}

/**
 * The input of ONE `conntrack -R FILE` per namespace: a `-D` line per stale target (duplicates
 * dropped). conntrack 1.4.x accepts one filter per `-D`, and each `-D` dumps the namespace's
 * table once: cost ≈ lines × table size (measured on a loaded 2-core host: ~7 ms a line against
 * 2,000 entries; 250 lines against 1,000 entries 6.6 s in one `-R` process, 7.0 s as 250
 * processes) — the one process saves a fork+exec+netns switch per line, not the dumps, so the
 * lines stay one per removed backend and frontend, proportional to the change. A line that matches nothing is
 * not an error; a malformed line aborts the whole batch (exit 2), which validated input never is.
 * Empty string when there is nothing to delete.
 */
export function conntrackBatch(stale: readonly StaleTarget[]): string {
  const lines = new Set<string>();
  for (const s of stale) lines.add(conntrackDeleteArgs(s).join(' '));
  return lines.size ? [...lines].join('\n') + '\n' : '';
}

/**
 * Stale targets whose address `d` serves again (any service or published port, active or
 * draining): a flush retried later (agent/lb/ct-flush.ts) must not cut the flows of a backend that
 * came back meanwhile (a node declared dead while only partitioned). O(backends of `d`): run when a
 * namespace is applied again while earlier targets still wait for their run or their retry.
 */
export function notServedIn(d: LbDesired, stale: readonly StaleTarget[]): StaleTarget[] {
  const ips = new Set<string>();
  for (const x of [...d.services, ...d.ingress]) for (const b of x.backends) (ips.add(b.ip), b.ip6 !== undefined && ips.add(b.ip6));
  return stale.filter((s) => !ips.has(s.ip));
}
