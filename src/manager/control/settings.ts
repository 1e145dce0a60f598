/**
 * Cluster-wide settings the control plane reads on every step (stored at `cluster/settings`):
 * today the scheduling strategy, classic Swarm's three — `spread` (the default: fewest tasks
 * of the service, then in total), `binpack` (fill the most reserved node that still fits
 * before the next) and `random`. A record from an older or foreign writer that does not
 * parse is refused loudly (MESHD_STORE_CORRUPT), never silently read as the default.
 */
import { z } from 'zod';
import { MeshError } from '../../core/errors.js';
import type { StrategyName } from '../../core/scheduler/index.js';

export const STRATEGIES: readonly StrategyName[] = ['spread', 'binpack', 'random'];

export interface ClusterSettings {
  strategy: StrategyName;
}

const settingsSchema = z.object({ strategy: z.enum(['spread', 'binpack', 'random']).default('spread') }).strict();
/** What `POST /v1/cluster/settings` takes: only the fields to change. */
export const settingsUpdateSchema = z.object({ strategy: z.enum(['spread', 'binpack', 'random']).optional() }).strict();

/** The stored record (undefined: never written → defaults). */
export function parseClusterSettings(v: unknown): ClusterSettings {
  if (v === undefined || v === null) return { strategy: 'spread' };
  const r = settingsSchema.safeParse(v);
  if (!r.success) throw new MeshError('MESHD_STORE_CORRUPT', `cluster settings record is invalid: ${r.error.issues[0]?.message ?? 'bad shape'}`);
  return r.data;
}
