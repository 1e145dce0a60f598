/**
 * A backend-neutral picture of what a dataplane holds in the kernel, read back by
 * `Dataplane.readKernel` (from `nft -j list table` or `ipvsadm -S -n`), and the comparison with
 * what the desired state says it should hold. Used by the compliance suite and `netctl debug lb`.
 */
import { sortedFrontends, type Compiled, type Proto, type Target } from './model.js';

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
    frontends: sortedFrontends(c).map((f) => ({
      key: f.key,
      kind: f.kind,
      ...(f.vip !== undefined ? { vip: f.vip } : {}),
      proto: f.proto,
      port: f.port,
      targets: f.targets.map((t) => ({ ...t })),
      draining: backend === 'ipvs' ? f.draining.map((t) => ({ ...t })) : [],
      masquerade: f.masquerade,
    })),
  };
}

function fmtTargets(ts: readonly Target[]): string {
  return ts.map((t) => `${t.ip}:${t.port}`).sort().join(',');
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
    for (const i of a.issues ?? []) out.push(`${k}: ${i}`);
  }
  for (const k of act.keys()) if (!exp.has(k)) out.push(`unexpected ${k}`);
  out.push(...(actual.stray ?? []));
  return out;
}
