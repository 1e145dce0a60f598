/**
 * A node restarted after a graceful leave rejoins through the members it remembers (agent/gossip/member-snapshot.ts,
 * core/gossip/rejoin.ts). The lab's n1 has no seeds; after SIGTERM every other member marks it `left` and never
 * reconnects to it, so before the snapshot it came back alone for good (1 member, its overlay activated with no
 * remote, the manager on it marked every worker Down). Bounds come from the `local` preset's gossip timings.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labSignalAgent, labStartAgent, type LabState } from '../../../src/lab/lab.js';
import { labRunDir } from '../../../src/lab/plan.js';
import { resolveGossipConfig } from '../../../src/core/gossip/config.js';
import { joinSpreadMs, retransmitLimit } from '../../../src/core/gossip/formulas.js';
import { joinRetryDelayMs } from '../../../src/agent/gossip/gossip.js';
import { memberSnapshotFile } from '../../../src/agent/gossip/member-snapshot.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';

const LAB = 'h11drejoin';
const N = 3;
const cfg = resolveGossipConfig('local');
/** Real processes on 2 shared cores: event loops stall; allow 2× the formula plus 2 s (as gossip-lab.test.ts). */
const SLACK = (ms: number) => ms * 2 + 2000;
/** One broadcast (a leave, a refutation) reaches every member within this (formulas.ts joinSpreadMs). */
const spreadMs = joinSpreadMs(retransmitLimit(cfg.retransmitMult, N), cfg.gossipIntervalMs);
/**
 * Rejoin: the first join push-pull (started before the agent reports ready) answers or times out within tcpTimeoutMs;
 * the retry comes at most joinRetryDelayMs(0) later and is answered within another tcpTimeoutMs; the reply tells n1
 * it is `left`, n1 refutes with a higher incarnation and that broadcast spreads within spreadMs.
 */
const rejoinBoundMs = SLACK(2 * cfg.tcpTimeoutMs + joinRetryDelayMs(0, 0.999999) + spreadMs);
/** The agent's own hard stop deadline (meshd-agent.ts: exit after 10 s whatever happens). */
const STOP_BOUND_MS = 10_000 + 2000;

interface M {
  name: string;
  state: string;
  incarnation: number;
}
let lab: LabState;

async function view(node: string): Promise<M[]> {
  return agentClient(lab, node).call<M[]>('GET', '/v1/gossip/members');
}
const stateOf = (v: M[], name: string) => v.find((m) => m.name === name)?.state;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZXx]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
};

before(async () => {
  lab = await createLab({ name: LAB, nodes: N, gossipPreset: 'local', readyTimeoutMs: 60_000 });
  const { ms } = await waitFor('full membership on every node', async () => {
    for (const n of lab.nodes) if ((await view(n.name)).filter((m) => m.state === 'alive').length !== N) return false;
    return true;
  }, 30_000);
  console.log(`${N} agents converged to full membership in ${ms} ms`);
});
after(async () => {
  await destroyLab(LAB);
});

test('SIGTERM the seedless n1, start it again: it rejoins through the members it remembered', async () => {
  assert.deepEqual(lab.nodes.find((n) => n.name === 'n1')!.seeds, [], 'the lab gives n1 no seeds (the case under test)');
  const pid = labSignalAgent(LAB, 'n1', 'SIGTERM');
  const exited = await waitFor('n1 agent exited after SIGTERM', () => !alive(pid), STOP_BOUND_MS);
  const left = await waitFor('n2, n3 see n1 left', async () => stateOf(await view('n2'), 'n1') === 'left' && stateOf(await view('n3'), 'n1') === 'left', SLACK(spreadMs));
  console.log(`n1 exited ${exited.ms} ms after SIGTERM; n2, n3 saw it left ${left.ms} ms later (bound ${SLACK(spreadMs)} ms)`);

  const file = memberSnapshotFile(join(labRunDir(LAB), 'n1', 'data'));
  assert.ok(existsSync(file), `n1 wrote ${file} on stop`);
  const snap = JSON.parse(readFileSync(file, 'utf8')) as { members: { name: string }[] };
  console.log(`n1's member snapshot: ${readFileSync(file, 'utf8').trim()}`);
  assert.deepEqual(snap.members.map((m) => m.name), ['n2', 'n3'], 'remembered: the members it last saw alive');

  const t0 = Date.now();
  await labStartAgent(LAB, 'n1');
  const readyMs = Date.now() - t0;
  const seen = await waitFor(`n1 sees ${N} members alive, n2 and n3 see n1 alive`, async () => {
    const v1 = await view('n1');
    if (v1.filter((m) => m.state === 'alive').length !== N) return false;
    return stateOf(await view('n2'), 'n1') === 'alive' && stateOf(await view('n3'), 'n1') === 'alive';
  }, rejoinBoundMs, 100, async () => {
    const out: string[] = [];
    for (const n of lab.nodes) out.push(`${n.name}: ${JSON.stringify((await view(n.name).catch(() => [])).map((m) => `${m.name}=${m.state}/${m.incarnation}`))}`);
    return out.join('\n');
  });
  console.log(`n1 ready ${readyMs} ms after start; full membership everywhere ${seen.ms} ms after ready (bound ${rejoinBoundMs} ms: 2 × tcpTimeout ${cfg.tcpTimeoutMs} + first retry ≤ ${joinRetryDelayMs(0, 0.999999)} + spread ${spreadMs}, ×2 + 2 s)`);
  console.log(`n1's incarnation after the rejoin: ${(await view('n2')).find((m) => m.name === 'n1')?.incarnation}`);
});

test('the whole cluster stopped gracefully, n1 first back: ready with nobody to answer, keeps what it remembers, merges when the others return', async () => {
  for (const node of ['n1', 'n2', 'n3']) {
    const pid = labSignalAgent(LAB, node, 'SIGTERM');
    await waitFor(`${node} agent exited after SIGTERM`, () => !alive(pid), STOP_BOUND_MS);
  }
  const file = memberSnapshotFile(join(labRunDir(LAB), 'n1', 'data'));
  const before = readFileSync(file, 'utf8');
  console.log(`n1's member snapshot after the full stop: ${before.trim()}`);
  assert.deepEqual((JSON.parse(before) as { members: { name: string }[] }).members.map((m) => m.name), ['n2', 'n3']);

  // Nobody answers n1's join attempts: it is ready as before (the agent's readiness never waited on the join;
  // the overlay/DNS sync wait that does is bounded by DEFAULT_SYNC_TIMEOUT_MS), and it alone writes no empty list.
  const t0 = Date.now();
  await labStartAgent(LAB, 'n1');
  console.log(`n1 ready ${Date.now() - t0} ms after start with nobody to join`);
  const lonely = await waitFor('n1 attempted joins that failed', async () => {
    const mt = await agentClient(lab, 'n1').call<{ streamFailures: number }>('GET', '/v1/gossip/metrics');
    return mt.streamFailures >= 2 ? mt.streamFailures : false;
  }, SLACK(2 * cfg.tcpTimeoutMs + joinRetryDelayMs(0, 0.999999)));
  assert.deepEqual((await view('n1')).map((m) => `${m.name}=${m.state}`), ['n1=alive']);
  assert.equal(readFileSync(file, 'utf8'), before, `n1 alone (${lonely.value} failed push-pulls) kept its snapshot`);

  await labStartAgent(LAB, 'n2');
  await labStartAgent(LAB, 'n3');
  const seen = await waitFor('full membership on every node', async () => {
    for (const n of lab.nodes) if ((await view(n.name)).filter((m) => m.state === 'alive').length !== N) return false;
    return true;
  }, rejoinBoundMs);
  console.log(`all ${N} alive everywhere ${seen.ms} ms after n3 was ready (bound ${rejoinBoundMs} ms)`);
});
