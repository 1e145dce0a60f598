/**
 * The LB half of "this node carries the change" (pure; asked by LbSubsystem.programs for the
 * convergence acks): every namespace that SHOULD balance to the task — its service is balanced
 * there with the task active — has APPLIED a state holding it with the record's IP and VIP.
 * A namespace that should not (dnsrr, no VIP, a node with no local task on the network, no
 * published port) does not hold an ack back. The overlay gate keeps a new remote backend out of
 * the applied state until the overlay programs it, so the ack also waits for the overlay.
 */
import type { LbDesired } from '../lb/model.js';

/** Does `d` select task `taskId` at `ip` for new connections, behind VIP `vip` when given? */
export function holdsBackend(d: LbDesired | undefined, taskId: string, ip: string, vip: string | null): boolean {
  if (!d) return false;
  if (vip !== null) {
    return d.services.some((s) => s.vip === vip && s.backends.some((b) => b.id === taskId && b.ip === ip && b.state === 'active'));
  }
  return d.ingress.some((p) => p.backends.some((b) => b.id === taskId && b.ip === ip && b.state === 'active'));
}

/** One namespace asked about: what it wants (from the tables, before gating) and what it applied. */
export interface NsProgrammedView {
  wants: boolean;
  applied: LbDesired | undefined;
}

/** True when every namespace that wants the backend applied it. */
export function lbProgrammed(namespaces: Iterable<NsProgrammedView>, taskId: string, ip: string, vip: string | null): boolean {
  for (const n of namespaces) if (n.wants && !holdsBackend(n.applied, taskId, ip, vip)) return false;
  return true;
}
