/** Small helpers for gossip state-machine tests on the simulator. */
import { resolveGossipConfig, type GossipConfig } from '../../../src/core/gossip/config.js';
import type { MemberState } from '../../../src/core/gossip/index.js';
import { Sim } from './sim.js';

export function cluster(n: number, seed: number, overrides: Record<string, number> = {}, loss = 0): { sim: Sim; names: string[]; cfg: GossipConfig } {
  const cfg = resolveGossipConfig('local', overrides);
  const sim = new Sim({ seed, config: cfg, loss });
  const names = Array.from({ length: n }, (_, i) => `n${i}`);
  for (const name of names) sim.add(name);
  for (const name of names.slice(1)) sim.join(name, [names[0]!]);
  const t = sim.runUntilTrue(() => allSee(sim, names, names, 'alive'), 30_000);
  if (t === undefined) throw new Error('cluster did not converge');
  return { sim, names, cfg };
}

/** Every observer (not killed) sees every subject in `state`. */
export function allSee(sim: Sim, observers: readonly string[], subjects: readonly string[], state: MemberState): boolean {
  return observers.every((o) => {
    const s = sim.get(o);
    return s.killed || subjects.every((x) => s.node.member(x)?.state === state);
  });
}
