/**
 * `service create/update --lb-algorithm random|round-robin|source-hash --lb-locality none|node|zone`
 * (issue 19 §3): how every node's load balancer picks a task for a NEW connection to the service
 * (its VIP and its published ports), on nftables and IPVS alike. Changing them replaces no task.
 */
import type { Command } from 'commander';
import { MeshError } from '../core/errors.js';

export const LB_ALGORITHMS = ['random', 'round-robin', 'source-hash'] as const;
export const LB_LOCALITIES = ['none', 'node', 'zone'] as const;

export interface LbFlags {
  lbAlgorithm?: string;
  lbLocality?: string;
}

export function addLbOptions(c: Command): Command {
  return c
    .option('--lb-algorithm <a>', 'random (default) | round-robin | source-hash (sticky by client address)')
    .option('--lb-locality <l>', 'none (default) | node (this node\'s tasks first, then its zone) | zone (node.labels.zone first); spills over when none is healthy');
}

function pick<T extends string>(flag: string, v: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new MeshError('MESHD_BAD_ARGUMENT', `${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);
  return v as T;
}

/**
 * The spec's `lb` after the flags: `current` (update) with the given flags applied; defaults are
 * dropped, so `--lb-algorithm random --lb-locality none` removes the field. Undefined = no `lb`.
 */
export function lbFrom(o: LbFlags, current?: unknown): Record<string, string> | undefined {
  const out: Record<string, string> = { ...((current && typeof current === 'object' ? current : {}) as Record<string, string>) };
  if (o.lbAlgorithm !== undefined) out.algorithm = pick('--lb-algorithm', o.lbAlgorithm, LB_ALGORITHMS);
  if (o.lbLocality !== undefined) out.locality = pick('--lb-locality', o.lbLocality, LB_LOCALITIES);
  if (out.algorithm === 'random') delete out.algorithm;
  if (out.locality === 'none') delete out.locality;
  return Object.keys(out).length ? out : undefined;
}
