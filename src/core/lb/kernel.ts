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
}

export interface KernelLbState {
  backend: 'nftables' | 'ipvs' | 'memory';
  frontends: KernelFrontend[];
}

/** What the kernel should hold for a compiled desired state (draining omitted; see compare). */
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
      draining: [],
      masquerade: f.masquerade,
    })),
  };
}

function fmtTargets(ts: readonly Target[]): string {
  return ts.map((t) => `${t.ip}:${t.port}`).sort().join(',');
}

/**
 * Human-readable differences between expected and actual (empty = in sync). Draining targets are
 * not compared (nftables does not hold them); target order is ignored.
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
  }
  for (const k of act.keys()) if (!exp.has(k)) out.push(`unexpected ${k}`);
  return out;
}
