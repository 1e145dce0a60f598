/**
 * Seeded simulation at N=1000 with 10% UDP loss: a killed node is declared dead by everyone and a
 * broadcast (a graceful leave) reaches everyone, within bounds derived from the formulas.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveGossipConfig } from '../../../src/core/gossip/config.js';
import { retransmitLimit, suspicionTimeout } from '../../../src/core/gossip/formulas.js';
import { Sim } from './sim.js';

const N = Number(process.env.GOSSIP_SIM_N ?? 1000);

test(`N=${N}, 10% loss: SIGKILLed member declared dead by all; a broadcast reaches all`, () => {
  // local timings; push-pull at the LAN interval (30 s, ×6 at this size), as a cluster this large would run.
  const cfg = resolveGossipConfig('local', { pushPullIntervalMs: 30_000 });
  const sim = new Sim({ seed: 42, config: cfg, loss: 0.1 });
  const names = Array.from({ length: N }, (_, i) => `node-${i}`);
  for (const n of names) sim.add(n);
  const roster = names.map((n) => ({ name: n, addr: sim.get(n).addr }));
  for (const n of names) sim.act(n, (g, now) => g.bootstrap(roster, now));
  let falseDeaths = 0;
  const victimDeadAt = new Map<string, number>();
  const victim = `node-${Math.floor(N / 2)}`;
  sim.onEvent = (node, ev, now) => {
    if (ev.type === 'member-dead' && ev.name !== victim) falseDeaths++;
    if (ev.type === 'member-dead' && ev.name === victim) victimDeadAt.set(node, now);
  };
  const wall = Date.now();
  sim.runFor(3000); // settle: probes running under loss
  assert.equal(falseDeaths, 0, 'no false deaths before the kill');

  sim.kill(victim);
  const t0 = sim.now;
  const live = () => sim.live();
  const t1 = sim.runUntilTrue(() => victimDeadAt.size >= N - 1, 60_000, 100);
  assert.ok(t1 !== undefined, `victim declared dead by ${victimDeadAt.size}/${N - 1}`);
  const detect = t1 - t0;
  const suspMin = suspicionTimeout(cfg.suspicionMult, N, cfg.probeIntervalMs);
  const suspMax = cfg.suspicionMaxTimeoutMult * suspMin;
  const maxHealth = Math.max(...live().map((s) => s.node.health()));
  // first probe of the victim within a few round-robin periods, the failed probe, the suspicion (≤ max), dissemination.
  const bound = 5 * cfg.probeIntervalMs * (maxHealth + 1) + suspMax + retransmitLimit(cfg.retransmitMult, N) * cfg.gossipIntervalMs;
  console.log(`detection ${detect} ms (suspicion min ${suspMin} max ${suspMax}, bound ${bound}), false deaths ${falseDeaths}, max health ${maxHealth}`);
  assert.ok(detect <= bound, `detection ${detect} ms > bound ${bound} ms`);
  assert.equal(falseDeaths, 0);

  // Dissemination: one graceful leave, everyone must learn it.
  const leaver = 'node-7';
  const seen = new Set<string>();
  sim.onEvent = (node, ev) => {
    if (ev.type === 'member-left' && ev.name === leaver) seen.add(node);
    if (ev.type === 'member-dead' && ev.name !== victim) falseDeaths++;
  };
  sim.act(leaver, (g, now) => g.leave(now));
  const t2 = sim.now;
  const t3 = sim.runUntilTrue(() => seen.size >= N - 2, 30_000, 20);
  assert.ok(t3 !== undefined, `leave reached ${seen.size}/${N - 2}`);
  const spread = t3 - t2;
  const spreadBound = retransmitLimit(cfg.retransmitMult, N) * cfg.gossipIntervalMs;
  console.log(`broadcast reached all in ${spread} ms (bound retransmitLimit×gossipInterval = ${spreadBound} ms); wall ${Date.now() - wall} ms; delivered ${sim.delivered}`);
  assert.ok(spread <= spreadBound, `dissemination ${spread} > ${spreadBound}`);
  assert.equal(falseDeaths, 0);
});
