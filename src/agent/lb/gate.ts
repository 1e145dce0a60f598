/**
 * The LB's side of the overlay gate (core/lb/overlay-gate.ts): the context a namespace's plan is
 * gated with — the overlay's programmed view, the table records that locate each backend, and
 * what the namespace last applied with success (never withdrawn) — and the plan steps that use
 * it. Replanning on overlay progress is lb.ts's (namespaces with held backends are marked dirty).
 */
import { INGRESS_NETWORK } from '../../core/endpoints.js';
import type { IngressPublish, LbDesired, VipService } from '../../core/lb/model.js';
import { endpointKey, gateIngress, gateServices, type GateContext, type GateMemo, type HeldBackend } from '../../core/lb/overlay-gate.js';
import type { LbState } from './state.js';
import type { OverlaySubsystem } from '../overlay/overlay.js';

export type OverlayView = Pick<OverlaySubsystem, 'programmed' | 'programmedVersion' | 'memberIps'>;

/** Backend keys (`id/ip`) active in a desired state. */
export function activeKeys(d: LbDesired | undefined): Set<string> {
  const out = new Set<string>();
  if (!d) return out;
  for (const x of [...d.services, ...d.ingress]) for (const b of x.backends) if (b.state === 'active') out.add(`${b.id}/${b.ip}`);
  return out;
}

/**
 * Gate context for one namespace. `applied` is the state it last applied with success: the
 * in-force set is built only when a backend is not programmed (rare), so a plan stays O(change).
 * The memo version is the overlay's view version alone: a backend kept because it is in force
 * stays in force while its service object is unchanged (it is part of what gets applied).
 */
export function gateContext(overlay: OverlayView, state: LbState, applied: LbDesired | undefined): GateContext {
  let inForce: Set<string> | null = null;
  const live = overlay.memberIps();
  const liveSet = new Set(live);
  return {
    programmed: overlay.programmed(),
    locate: (network, b) => {
      const r = state.recordOf(network, b.id);
      return r && r.ip === b.ip ? { mac: r.mac, nodeIp: r.nodeIp } : undefined;
    },
    inForce: (b) => (inForce ??= activeKeys(applied)).has(`${b.id}/${b.ip}`),
    nodeLive: (ip) => liveSet.has(ip),
    // Membership is part of the answer (node-dead): a change of it is a new version.
    version: `${overlay.programmedVersion}|${live.join(',')}`,
  };
}

/** VIP services of a task's networks (one list per network, in network order), gated. */
export function gatedVipServices(perNetwork: ReadonlyArray<{ network: string; services: VipService[] }>, dropConflicts: (s: VipService[]) => { services: VipService[]; conflicts: string[] }, ctx: GateContext, memo: GateMemo): { services: VipService[]; conflicts: string[]; held: HeldBackend[] } {
  const netOf = new Map<VipService, string>();
  for (const { network, services } of perNetwork) for (const s of services) netOf.set(s, network);
  // Conflicts are resolved on the ungated services, so holding a backend back never flips which service wins a VIP.
  const { services, conflicts } = dropConflicts(perNetwork.flatMap((x) => x.services));
  const g = gateServices(services.map((service) => ({ network: netOf.get(service)!, service })), ctx, memo);
  return { services: g.services, conflicts, held: g.held };
}

/** Published ports of the ingress sandbox, gated (backends are ingress addresses). */
export function gatedIngress(ingress: readonly IngressPublish[], ctx: GateContext, memo: GateMemo): { ingress: IngressPublish[]; held: HeldBackend[] } {
  return gateIngress(ingress, INGRESS_NETWORK, ctx, memo);
}

/**
 * Held backends for a log line: what the overlay's view and the table each say of the location
 * (diagnosis of a backend the overlay has not reported).
 */
export function heldForLog(held: readonly HeldBackend[], overlay: OverlayView, state: LbState): string[] {
  const view = overlay.programmed();
  return held.map((h) => {
    const r = state.recordOf(h.network, h.id);
    return `${h.network}/${h.ip} ${h.reason} overlay=${view?.get(endpointKey(h.network, h.ip)) ?? 'none'} table=${r ? `${r.mac}@${r.nodeIp}` : 'none'}`;
  });
}
