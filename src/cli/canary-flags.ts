/**
 * `service update --canary 10%` and `service update --canary-complete` (issue 19 §3): a canary
 * starts tasks of the new spec beside the old ones and sends that share of NEW connections to them
 * (per-task weights on every node's LB); `--canary-complete` rolls the rest, `service rollback`
 * removes the canary tasks. The manager holds the logic (core/orchestrator/canary.ts, update.ts).
 */
import type { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import { MAX_CANARY_PERCENT, MIN_CANARY_PERCENT, parseCanaryPercent } from '../core/orchestrator/canary.js';

export interface CanaryFlags {
  canary?: string;
  canaryComplete?: boolean;
}

export function addCanaryOptions(c: Command): Command {
  return c
    .option('--canary <percent>', `start the new tasks beside the old ones with this share of new connections (${MIN_CANARY_PERCENT}-${MAX_CANARY_PERCENT}%, e.g. 10%)`)
    .option('--canary-complete', 'promote the running canary: replace the old tasks too (`service rollback` removes the canary instead)');
}

/** The update body's `canary` (whole percent), or undefined without --canary. */
export function canaryPercent(o: CanaryFlags): number | undefined {
  if (o.canary === undefined) return undefined;
  const p = parseCanaryPercent(o.canary);
  if (p === null) throw new MeshError('MESHD_BAD_ARGUMENT', `--canary must be a whole percent ${MIN_CANARY_PERCENT}-${MAX_CANARY_PERCENT} (e.g. 10%), got ${JSON.stringify(o.canary)}`);
  if (o.canaryComplete) throw new MeshError('MESHD_BAD_ARGUMENT', '--canary and --canary-complete exclude each other');
  return p;
}
