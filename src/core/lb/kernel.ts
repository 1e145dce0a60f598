/**
 * A backend-neutral picture of what a dataplane holds in the kernel, read back by
 * `Dataplane.readKernel` (from `nft -j list table` or `ipvsadm -S -n`), and the comparison with
 * what the desired state says it should hold. Used by the compliance suite and `netctl debug lb`.
 */
import { formatHostPort } from '../hostport.js';
import { slotsOf, sortedFrontends, type Compiled, type Frontend, type LbAlgorithm, type Proto, type Target } from './model.js';

export interface KernelFrontend {
  key: string;
  kind: 'vip' | 'ingress';
  vip?: string;
  proto: Proto;
  port: number;
  /** Targets eligible for new connections. */
  targets: Target[];
  /** Targets held at weight 0 (IPVS only; nftables simply leaves them out). */
  draining: Target[];
  masquerade: boolean;
  /** nftables: the pick chain's algorithm (absent = random). */
  algorithm?: LbAlgorithm;
  /** IPVS: the virtual service's scheduler (`rr`, `wrr`, `sh`) and each target's weight (same order as `targets`). */
  scheduler?: string;
  weights?: number[];
  /**
   * What the read-back found wrong inside the frontend beyond its targets (IPVS: a scheduler other
   * than rr, a real server not masqueraded or at a weight meshd never sets); each is drift.
   */
  issues?: string[];
}

export interface KernelLbState {
  backend: 'nftables' | 'ipvs' | 'memory';
  frontends: KernelFrontend[];
  /** Kernel objects of ours that belong to no frontend (IPVS: a service the mark table does not route to); each is drift. */
  stray?: string[];
}

/**
 * What the kernel should hold for a compiled desired state. Draining targets are expected only
 * on IPVS (real servers at weight 0); nftables simply leaves them out.
 */
export function expectedKernel(c: Compiled, backend: KernelLbState['backend']): KernelLbState {
  return {
    backend,
    // IPv6 frontends too: nftables reads them from `ip6 meshd-lb6`; IPVS reads IPv6 VIPs from its
    // `-t [VIP6]:PORT` services and IPv6 published ports from its `-f MARK -6` services joined with
    // the `ip6 meshd-ipvs6` mark table.
    frontends: sortedFrontends(c).map((f) => ({
      key: f.key,
      kind: f.kind,
      ...(f.vip !== undefined ? { vip: f.vip } : {}),
      proto: f.proto,
      port: f.port,
      // nftables holds the weighted slot list (a target repeated per its weight)
      targets: (backend === 'ipvs' ? f.targets : slotsOf(f)).map((t) => ({ ...t })),
      draining: backend === 'ipvs' ? f.draining.map((t) => ({ ...t })) : [],
      masquerade: f.masquerade,
      ...(backend !== 'ipvs' && f.algorithm ? { algorithm: f.algorithm } : {}),
      ...(backend === 'ipvs' ? { scheduler: ipvsScheduler(f), weights: f.targets.map((_, i) => f.weights?.[i] ?? 1) } : {}),
    })),
  };
}

/**
 * The IPVS scheduler of a frontend: `sh` for source-hash; `wrr` when weighted; else `rr` (IPVS
 * has no random scheduler: rr is the nearest stateless even spread, and what Docker uses).
 */
export function ipvsScheduler(f: Pick<Frontend, 'algorithm' | 'weights'>): 'rr' | 'wrr' | 'sh' {
  if (f.algorithm === 'source-hash') return 'sh';
  return f.weights ? 'wrr' : 'rr';
}

function fmtWeights(ts: readonly Target[], ws: readonly number[] | undefined): string {
  return ts.map((t, i) => `${formatHostPort(t.ip, t.port)}=${ws?.[i] ?? 1}`).sort().join(',');
}

function fmtTargets(ts: readonly Target[]): string {
  return ts.map((t) => formatHostPort(t.ip, t.port)).sort().join(',');
}

/**
 * Human-readable differences between expected and actual (empty = in sync). Draining targets are
 * compared on IPVS only (nftables does not hold them); target order is ignored; the read-back's
 * own findings (`issues`, `stray`) are drift too.
 */
export function compareKernel(expected: KernelLbState, actual: KernelLbState): string[] {
  const out: string[] = [];
  const act = new Map(actual.frontends.map((f) => [f.key, f]));
  const exp = new Map(expected.frontends.map((f) => [f.key, f]));
  for (const [k, e] of exp) {
    const a = act.get(k);
    if (!a) {
      out.push(`missing ${k}`);
      continue;
    }
    if (fmtTargets(e.targets) !== fmtTargets(a.targets)) out.push(`${k}: targets ${fmtTargets(a.targets) || '(none)'}, want ${fmtTargets(e.targets) || '(none)'}`);
    // An empty frontend rejects every new connection: there is nothing to masquerade, and the kernel
    // keeps no trace of it (nftables reads such an ingress back as `masquerade false`). Comparing it
    // reported drift whenever the periodic check met a service scaled to 0 (lb-agent, 1 run in 3).
    if (e.targets.length > 0 && e.masquerade !== a.masquerade) out.push(`${k}: masquerade ${a.masquerade}, want ${e.masquerade}`);
    if (expected.backend === 'ipvs' && fmtTargets(e.draining) !== fmtTargets(a.draining)) out.push(`${k}: weight-0 (draining) reals ${fmtTargets(a.draining) || '(none)'}, want ${fmtTargets(e.draining) || '(none)'}`);
    if ((e.algorithm ?? 'random') !== (a.algorithm ?? 'random')) out.push(`${k}: algorithm ${a.algorithm ?? 'random'}, want ${e.algorithm ?? 'random'}`);
    if (e.scheduler !== undefined && e.targets.length > 0 && e.scheduler !== a.scheduler) out.push(`${k}: IPVS scheduler ${a.scheduler ?? '?'}, want ${e.scheduler}`);
    if (e.weights !== undefined && fmtWeights(e.targets, e.weights) !== fmtWeights(a.targets, a.weights)) out.push(`${k}: weights ${fmtWeights(a.targets, a.weights)}, want ${fmtWeights(e.targets, e.weights)}`);
    for (const i of a.issues ?? []) out.push(`${k}: ${i}`);
  }
  for (const k of act.keys()) if (!exp.has(k)) out.push(`unexpected ${k}`);
  out.push(...(actual.stray ?? []));
  return out;
}
