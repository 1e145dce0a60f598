/**
 * Issue 3, real: 16 agents on UDP/TCP in a lab. Kill -9, SIGSTOP below the suspicion
 * timeout, a partition beyond it and its heal, UDP-only and one-way blocks — with bounds
 * taken from the formulas of the `local` preset, plus slack for a busy 2-core machine.
 * The agents run with their defaults, automatic-MTU probes included: a full probe round on every
 * join, in step on all 16 agents, once stalled their event loops past the `local` probe timeout
 * and the UDP-only case below saw false deaths (agent/overlay/mtu.ts says why joins are cheap now).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { realExec } from '../../../src/adapters/exec.js';
import { FAULT_TABLE, labHeal, labPartition, labBlock } from '../../../src/lab/faults.js';
import { labSignalAgent, labStartAgent, type LabState } from '../../../src/lab/lab.js';
import { resolveGossipConfig } from '../../../src/core/gossip/config.js';
import { detectionBoundMs, suspicionTimeout } from '../../../src/core/gossip/formulas.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';

const LAB = 'itgsp';
const N = 16;
const cfg = resolveGossipConfig('local');
const minSuspicionMs = suspicionTimeout(cfg.suspicionMult, N, cfg.probeIntervalMs);
const maxSuspicionMs = minSuspicionMs * cfg.suspicionMaxTimeoutMult;
/** Real processes on 2 shared cores: event loops stall; allow 2× the formula plus 2 s. */
const SLACK = (ms: number) => ms * 2 + 2000;

interface M {
  name: string;
  state: string;
  incarnation: number;
}
let lab: LabState;
const live = new Set<string>();

async function views(): Promise<Map<string, M[]>> {
  const out = new Map<string, M[]>();
  await Promise.all([...live].map(async (n) => out.set(n, await agentClient(lab, n).call<M[]>('GET', '/v1/gossip/members'))));
  return out;
}
const stateOf = (view: M[], name: string) => view.find((m) => m.name === name)?.state;

type Counters = { tcpFallbackAcks: number; indirectAcks: number; indirectProbes: number };
async function gossipMetrics(): Promise<Map<string, Counters>> {
  const out = new Map<string, Counters>();
  await Promise.all([...live].map(async (n) => out.set(n, await agentClient(lab, n).call<Counters>('GET', '/v1/gossip/metrics'))));
  return out;
}

/** Packets the lab's fault table on `node` dropped so far (sum of its rule counters). */
async function faultDrops(node: string): Promise<number> {
  const r = await realExec.run('nft', ['list', 'table', 'inet', FAULT_TABLE], { netns: lab.nodes.find((n) => n.name === node)!.netns });
  assert.equal(r.code, 0, r.stderr);
  return [...r.stdout.matchAll(/counter packets (\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
}

/**
 * Watches every live node's view and records any member seen dead that should not be, with when it
 * was first seen (ms after the watch started), so a failure can be lined up with the agents' logs.
 */
function watchFalseDeaths(healthy: () => Set<string>): { stop: () => Promise<string[]> } {
  const bad = new Map<string, number>();
  const t0 = Date.now();
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const [viewer, view] of await views()) {
        for (const m of view) {
          const k = `${viewer} saw ${m.name} dead`;
          if (m.state === 'dead' && healthy().has(m.name) && !bad.has(k)) bad.set(k, Date.now() - t0);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return [...bad].map(([k, ms]) => `${k} (first at +${ms} ms, ${new Date(t0 + ms).toISOString()})`);
    },
  };
}

before(async () => {
  lab = await createLab({ name: LAB, nodes: N, gossipPreset: 'local', readyTimeoutMs: 60_000 });
  for (const n of lab.nodes) live.add(n.name);
  const { ms } = await waitFor('full membership on every node', async () => {
    const v = await views();
    return [...v.values()].every((view) => view.filter((m) => m.state === 'alive').length === N);
  }, 30_000);
  console.log(`${N} agents converged to full membership in ${ms} ms`);
});
after(async () => {
  await destroyLab(LAB);
});

test('SIGSTOP one node below the suspicion timeout: it refutes, zero false deaths', async () => {
  const pauseMs = Math.floor(minSuspicionMs * 0.5);
  const w = watchFalseDeaths(() => live);
  labSignalAgent(LAB, 'n15', 'SIGSTOP');
  await new Promise((r) => setTimeout(r, pauseMs));
  labSignalAgent(LAB, 'n15', 'SIGCONT');
  await new Promise((r) => setTimeout(r, 3000));
  const bad = await w.stop();
  assert.deepEqual(bad, [], `paused ${pauseMs} ms (min suspicion ${minSuspicionMs} ms)`);
  const v = await views();
  for (const [viewer, view] of v) assert.equal(stateOf(view, 'n15'), 'alive', `${viewer} sees n15`);
});

test('kill -9 a node: declared dead by all within the bound; restart rejoins', async () => {
  const bound = SLACK(detectionBoundMs(cfg.probeIntervalMs, maxSuspicionMs, cfg.gossipIntervalMs, N));
  labSignalAgent(LAB, 'n16', 'SIGKILL');
  live.delete('n16');
  const { ms } = await waitFor('n16 dead everywhere', async () => [...(await views()).values()].every((view) => stateOf(view, 'n16') === 'dead'), bound);
  console.log(`SIGKILL detected by all ${N - 1} in ${ms} ms (bound ${bound} ms)`);
  await labStartAgent(LAB, 'n16');
  live.add('n16');
  await waitFor('n16 alive again everywhere', async () => [...(await views()).values()].every((view) => stateOf(view, 'n16') === 'alive'), 20_000);
});

test('UDP-only block: TCP fallback keeps the member alive; one-way block: indirect probes do', async () => {
  const w = watchFalseDeaths(() => live);
  const m0 = await gossipMetrics();
  await labBlock(realExec, LAB, 'n14', { proto: 'udp' });
  await labBlock(realExec, LAB, 'n13', { oneWay: true, from: ['n1', 'n2'] });
  await new Promise((r) => setTimeout(r, Math.max(8000, maxSuspicionMs + 2000)));
  // Read before the heal: the heal deletes the fault tables and their counters.
  const dropped = { n14: await faultDrops('n14'), n13: await faultDrops('n13') };
  const m1 = await gossipMetrics();
  await labHeal(realExec, LAB);
  const bad = await w.stop();
  const d = (n: string, k: 'tcpFallbackAcks' | 'indirectAcks' | 'indirectProbes') => m1.get(n)![k] - m0.get(n)![k];
  const others = [...m1.keys()].filter((n) => n !== 'n14');
  const othersTcp = others.reduce((a, n) => a + d(n, 'tcpFallbackAcks'), 0);
  console.log(`blocks: n14 dropped ${dropped.n14} UDP packets, n13 dropped ${dropped.n13} packets from n1/n2; ` +
    `TCP fallback acks: n14 ${d('n14', 'tcpFallbackAcks')}, others ${othersTcp}; indirect acks: n13 ${d('n13', 'indirectAcks')}, n1 ${d('n1', 'indirectAcks')}, n2 ${d('n2', 'indirectAcks')}`);
  assert.deepEqual(bad, [], 'no member declared dead while it was reachable by another path');
  // The blocks took effect: the drop rules matched traffic.
  assert.ok(dropped.n14 > 0, 'n14\'s UDP block dropped nothing');
  assert.ok(dropped.n13 > 0, 'n13\'s one-way block dropped nothing');
  // The fallbacks were what kept them alive. With probes every 200 ms over 15 members, each node
  // probes every other about twice per 8 s block (health scaling can halve that; still ≥ 1):
  // - n14 reaches nobody over UDP, so each of its own probes ends by TCP, and others' probes of n14 too;
  // - n13 hears nothing from n1/n2 (TCP included), so its probes of them and theirs of it are answered
  //   only through a helper relaying the ack.
  assert.ok(d('n14', 'tcpFallbackAcks') > 0, 'n14\'s probes were answered by the TCP fallback');
  assert.ok(othersTcp > 0, 'probes of n14 were answered by the TCP fallback');
  assert.ok(d('n13', 'indirectAcks') > 0, 'n13\'s probes of n1/n2 were answered through helpers');
  assert.ok(d('n1', 'indirectAcks') + d('n2', 'indirectAcks') > 0, 'n1/n2\'s probes of n13 were answered through helpers');
});

test('partition 6|10 beyond the suspicion timeout, then heal: merges with no manual step', async () => {
  const left = lab.nodes.slice(0, 6).map((n) => n.name);
  const right = lab.nodes.slice(6).map((n) => n.name);
  await labPartition(realExec, LAB, [left, right]);
  await waitFor('each side sees the other dead', async () => {
    const v = await views();
    return left.every((a) => right.every((b) => stateOf(v.get(a)!, b) === 'dead')) && right.every((a) => left.every((b) => stateOf(v.get(a)!, b) === 'dead'));
  }, SLACK(maxSuspicionMs + detectionBoundMs(cfg.probeIntervalMs, 0, cfg.gossipIntervalMs, N)));
  await labHeal(realExec, LAB);
  const { ms } = await waitFor('merged: everyone alive everywhere', async () => [...(await views()).values()].every((view) => view.filter((m) => m.state === 'alive').length === N), SLACK(cfg.reconnectIntervalMs * 3 + cfg.pushPullIntervalMs));
  console.log(`partition healed: merged in ${ms} ms`);
});

test('tables: an entry reaches every node of its network (and only those); a dead owner\'s entries vanish everywhere', async () => {
  const members = lab.nodes.map((n) => n.name).filter((n) => n !== 'n10');
  await Promise.all(members.map((n) => agentClient(lab, n).call('POST', '/v1/gossip/networks/app')));
  await agentClient(lab, 'n3').call('POST', '/v1/gossip/tables', { network: 'app', table: 'endpoints', key: 'web.1', value: '{"ip":"10.0.1.3"}' });
  await agentClient(lab, 'n5').call('POST', '/v1/gossip/tables', { network: 'app', table: 'endpoints', key: 'web.2', value: '{"ip":"10.0.1.5"}' });
  type Dump = Array<{ network: string; entries: Array<{ key: string; owner: string }> }>;
  const keysOn = async (n: string) => ((await agentClient(lab, n).call<Dump>('GET', '/v1/gossip/tables?network=app'))[0]?.entries ?? []).map((e) => e.key).sort().join(',');
  const { ms } = await waitFor('both entries on every member of app', async () => (await Promise.all(members.map(keysOn))).every((k) => k === 'web.1,web.2'), 15_000);
  console.log(`table entries reached all ${members.length} members of the network in ${ms} ms`);
  assert.equal(await keysOn('n10'), '', 'a node that did not join the network holds none of its entries');
  labSignalAgent(LAB, 'n5', 'SIGKILL');
  live.delete('n5');
  const others = members.filter((n) => n !== 'n5');
  const r = await waitFor('n5\'s entry gone everywhere', async () => (await Promise.all(others.map(keysOn))).every((k) => k === 'web.1'), SLACK(detectionBoundMs(cfg.probeIntervalMs, maxSuspicionMs, cfg.gossipIntervalMs, N)));
  console.log(`a killed owner's entries were removed everywhere in ${r.ms} ms`);
});
