/**
 * Property test in the spirit of NetworkDB's TestNetworkDBAlwaysConverges: random joins, leaves, restarts,
 * writes, deletes, network joins/leaves, partitions and heals on 2–25 nodes; after a final heal and a quiet
 * period, every live node agrees on membership and every member of a network holds the identical table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../../src/core/clock.js';
import { resolveGossipConfig } from '../../../src/core/gossip/config.js';
import { Sim } from './sim.js';

const NETS = ['red', 'green', 'blue'];
const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8];

export function runSeed(seed: number, quietMs = 40_000): Sim {
  const rng = seededRng(seed * 1000 + 17);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
  // tombstones outlive the test: reaping during a long partition can legitimately resurrect (NetworkDB has the same bound)
  const cfg = resolveGossipConfig('local', { tombstoneReapMs: 3_600_000 });
  const sim = new Sim({ seed, config: cfg, loss: 0.02 });
  if (process.env.GOSSIP_TRACE) sim.onEvent = (n, e) => { if (JSON.stringify(e).includes(process.env.GOSSIP_TRACE!)) console.log(sim.now.toFixed(0), n, JSON.stringify(e)); };
  const n = 2 + Math.floor(rng() * 24);
  let next = 0;
  const up = new Set<string>();
  const spawn = (name = `p${next++}`): string => {
    if (sim.nodes.has(name)) sim.restart(name);
    else sim.add(name);
    const seeds = [...up].filter((x) => x !== name);
    if (seeds.length) sim.join(name, [pick(seeds), pick(seeds)]);
    up.add(name);
    return name;
  };
  for (let i = 0; i < n; i++) spawn();
  sim.runFor(3000);
  const log: string[] = [];
  for (let step = 0; step < 80; step++) {
    const live = [...up];
    const who = pick(live);
    const g = sim.get(who).node;
    const r = rng();
    const net = pick(NETS);
    if (r < 0.35) {
      if (g.networks().includes(net)) {
        sim.act(who, (x, now) => x.tableSet(net, pick(['ep', 'svc']), `k${Math.floor(rng() * 8)}`, Uint8Array.of(step, seed), now));
        log.push(`${who} set ${net}`);
      } else {
        sim.act(who, (x, now) => x.joinNetwork(net, now));
        log.push(`${who} join ${net}`);
      }
    } else if (r < 0.5) {
      const e = g.networks().length ? g.tableEntries(pick(g.networks())) : [];
      const victim = e.length ? pick(e) : undefined;
      if (victim) sim.act(who, (x, now) => x.tableDelete(g.networks().find((nn) => x.tableGet(nn, victim.table, victim.key))!, victim.table, victim.key, now));
      log.push(`${who} delete`);
    } else if (r < 0.58) {
      sim.act(who, (x, now) => x.leaveNetwork(net, now));
      log.push(`${who} leave ${net}`);
    } else if (r < 0.64 && live.length > 2) {
      const groups: string[][] = [[], []];
      for (const x of sim.nodes.keys()) groups[rng() < 0.5 ? 0 : 1]!.push(x);
      sim.partition(groups);
      log.push(`partition ${groups.map((gg) => gg.length).join('|')}`);
    } else if (r < 0.72) {
      sim.heal();
      log.push('heal');
    } else if (r < 0.75 && live.length > 2) {
      sim.kill(who);
      up.delete(who);
      log.push(`kill ${who}`);
    } else if (r < 0.78 && live.length > 2) {
      sim.act(who, (x, now) => x.leave(now));
      sim.runFor(500);
      sim.kill(who);
      up.delete(who);
      log.push(`graceful leave ${who}`);
    } else if (r < 0.82) {
      // half the time a killed node comes back under its old name and address (a restarted agent)
      const back = [...sim.nodes.values()].find((x) => x.killed)?.name;
      const name = spawn(back && rng() < 0.5 ? back : undefined);
      log.push(`spawn ${name}`);
    }
    sim.runFor(Math.floor(rng() * 1500));
  }
  sim.heal();
  sim.loss = 0;
  // quiet period: long enough for suspicion timeouts, reconnects and a few push-pull rounds
  sim.runFor(quietMs);
  const live = [...up].sort();
  const ctx = `seed ${seed}, n ${n}, ${log.length} ops: ${log.slice(-12).join('; ')}`;
  for (const a of live) {
    const view = sim.get(a).node.members().filter((m) => m.state === 'alive').map((m) => m.name).sort();
    const odd = sim.get(a).node.members().filter((m) => (m.state === 'alive') !== live.includes(m.name)).map((m) => `${m.name}:${m.state}:${m.incarnation}`)
      .concat(live.filter((x) => !sim.get(a).node.member(x)).map((x) => `${x}:unknown(knows ${sim.get(x).node.members().length})`));
    assert.deepEqual(view, live, `membership of ${a}: ${odd.join(' ')} (${ctx})`);
  }
  for (const net of NETS) {
    const members = live.filter((a) => sim.get(a).node.networks().includes(net));
    const want = JSON.stringify(members);
    const render = (a: string) => JSON.stringify(sim.get(a).node.tableEntries(net).map((e) => [e.table, e.key, [...e.value], e.owner]));
    for (const a of live) assert.equal(JSON.stringify(sim.get(a).node.networkNodes(net)), want, `networkNodes(${net}) at ${a} (${ctx})`);
    for (const a of members) {
      assert.equal(render(a), render(members[0]!), `table ${net} at ${a} vs ${members[0]} (${ctx})`);
      for (const e of sim.get(a).node.tableEntries(net)) assert.ok(members.includes(e.owner), `entry owned by ${e.owner}, not on ${net} (${ctx})`);
    }
  }
  return sim;
}

// GOSSIP_CONVERGE_IMPORT=1 lets a script import runSeed without registering the tests.
if (!process.env.GOSSIP_CONVERGE_IMPORT) for (const seed of SEEDS) test(`tables and membership always converge after heal (seed ${seed})`, () => {
  runSeed(seed);
});
