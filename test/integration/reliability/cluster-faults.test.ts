/**
 * Reliability cases 3 and 6 of ARCHITECTURE §4 on a whole cluster (manager, workers, overlay,
 * mesh, DNS — real agents in a 5-node lab), driven through the real netctl:
 *
 * - Partition 3|2 beyond the suspicion timeout, manager on the majority side: the majority
 *   reschedules the minority's tasks; the minority (no manager) starts nothing new; after the
 *   heal the halves merge with no manual step, the stale copies on the minority are shut down,
 *   exactly `replicas` tasks run and the mesh answers on every node again.
 * - Every agent SIGKILLed and restarted at once, then a staggered restart: full membership
 *   within the bound, the overlay and the mesh work again (repaired from kernel state), names
 *   resolve inside a task.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNs, netctl } from '../../helpers/cli.js';
import { agentClient, createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';
import { defaultNodeDownGraceMs } from '../../../src/core/config.js';

const LAB = 'itrel';
const NODES = ['n1', 'n2', 'n3', 'n4', 'n5'];
const MAJORITY = ['n1', 'n2', 'n3'];
const MINORITY = ['n4', 'n5'];
const tmp = mkdtempSync(join(tmpdir(), 'meshd-itrel-'));
let lab: LabState;
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args]);

interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string }
interface MemberJ { name: string; state: string }
interface AgentTask { id: string; state: string }

async function ps(): Promise<TaskJ[]> {
  const r = await on('n1', 'service', 'ps', 'web', '--format', 'json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as TaskJ[];
}
const running = (ts: TaskJ[]) => ts.filter((t) => t.desiredState === 'running' && t.state === 'running');

async function agentTasks(node: string): Promise<AgentTask[]> {
  return agentClient(lab, node).call<AgentTask[]>('GET', '/v1/tasks');
}

async function aliveSeenBy(node: string): Promise<string[]> {
  const r = await on(node, 'debug', 'members', '--format', 'json');
  if (r.code !== 0) return [];
  return (JSON.parse(r.stdout) as MemberJ[]).filter((m) => m.state === 'alive').map((m) => m.name).sort();
}

/** Every node sees exactly `want` alive (by name), within `ms`. */
async function membership(want: string[], nodes: string[], ms: number): Promise<number> {
  const t0 = Date.now();
  for (const n of nodes) {
    await waitFor(`${n} sees ${want.join(',')} alive`, async () => {
      const alive = await aliveSeenBy(n);
      return alive.join(',') === [...want].sort().join(',');
    }, ms, 250);
  }
  return Date.now() - t0;
}

/** `n` requests to a node's published port from the lab client: how many a task answered, and which tasks. */
function meshAnswers(node: string, n = 10): { answered: number; seen: Set<string>; failures: string[] } {
  const addr = lab.nodes.find((x) => x.name === node)!.underlay;
  const seen = new Set<string>();
  const failures: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = inNs(lab.client.netns, ['curl', '-s', '-m', '3', `http://${addr}:8080/`], 10_000);
    const m = /task: (web\.\d+)/.exec(r.stdout);
    if (r.code === 0 && m) seen.add(m[1]!);
    else failures.push(`curl exit ${r.code}${r.stdout ? `: ${r.stdout.slice(0, 80)}` : ''}`);
  }
  return { answered: n - failures.length, seen, failures };
}

/** What a node's LB and ingress hold, and its agent's last errors: printed when its mesh does not answer. */
async function diagnose(node: string): Promise<string> {
  const lb = await on(node, 'debug', 'lb');
  const st = await agentClient(lab, node).call<unknown>('GET', '/v1/lb/status').catch((e: Error) => e.message);
  const log = lab.nodes.find((x) => x.name === node)!.log;
  const errs = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => /"level":(40|50|60)/.test(l)).slice(-15).join('\n') : '';
  return `debug lb on ${node}:\n${lb.stdout}${lb.stderr}\nstatus: ${JSON.stringify(st).slice(0, 3000)}\nwarnings/errors:\n${errs}`;
}

/** The mesh answers on every node in `nodes`: 3 requests in a row, all answered by a task. */
async function meshEverywhere(nodes: string[], ms: number, phase: string): Promise<void> {
  for (const n of nodes) {
    let last: ReturnType<typeof meshAnswers> | undefined;
    const { ms: took } = await waitFor(`mesh on ${n} (${phase}): 3 of 3 requests answered`, () => (last = meshAnswers(n, 3)).answered === 3, ms, 500,
      async () => `last round: ${last?.answered ?? 0}/3 answered (${last?.failures.join('; ') ?? 'none yet'}), tasks ${[...(last?.seen ?? [])].join(',')}\n${await diagnose(n)}`);
    if (took > 0) process.stdout.write(`# mesh on ${n} (${phase}) answered 3/3 after ${took} ms\n`);
  }
}

before(async () => {
  lab = await createLab({ name: LAB, nodes: NODES.length });
});
after(async () => {
  await destroyLab(LAB);
  rmSync(tmp, { recursive: true, force: true });
});

describe('cluster faults on a 5-node lab', { timeout: 600_000 }, () => {
  test('setup: manager n1, 4 workers, web ×5 published on 8080 through the mesh', async () => {
    await joinLabCluster(lab, join(tmp, 'worker.token'), { json: false, timeoutMs: 120_000 }); // n1 manager, n2..n5 workers
    const net = await on('n1', 'network', 'create', '-d', 'overlay', '--subnet', '10.61.0.0/24', 'app');
    assert.equal(net.code, 0, net.stderr);
    const c = await on('n1', 'service', 'create', '--name', 'web', '--replicas', '5', '--network', 'app', '-p', '8080:80', '--timeout', '90s', 'whoami');
    assert.equal(c.code, 0, c.stderr);
    const r = running(await ps());
    assert.equal(r.length, 5);
    assert.equal(new Set(r.map((t) => t.node)).size, 5, 'spread one per node');
    await meshEverywhere(NODES, 30_000, 'after setup');
  });

  test('partition 3|2 beyond the suspicion timeout: majority reschedules, minority starts nothing; heal merges by itself', async () => {
    const before = new Map<string, string[]>();
    for (const n of MINORITY) before.set(n, (await agentTasks(n)).filter((t) => t.state === 'running').map((t) => t.id).sort());
    const p = await netctl(['lab', 'fault', 'partition', MAJORITY.join(','), MINORITY.join(','), '--name', LAB]);
    assert.equal(p.code, 0, p.stderr);
    try {
      const { ms } = await waitFor('minority tasks rescheduled on the majority', async () => {
        const r = running(await ps());
        return r.length === 5 && r.every((t) => MAJORITY.includes(t.node ?? '')) && r;
      }, 60_000, 500);
      process.stdout.write(`# majority rescheduled the minority's tasks ${ms} ms after the cut\n`);
      const nodes = JSON.parse((await on('n1', 'node', 'ls', '--format', 'json')).stdout) as Array<{ hostname: string; state: string }>;
      for (const n of MINORITY) assert.equal(nodes.find((x) => x.hostname === n)!.state, 'down');
      // The minority has no manager: it keeps what it ran and starts nothing new.
      await membership(MINORITY, MINORITY, 30_000);
      for (const n of MINORITY) {
        const now = (await agentTasks(n)).filter((t) => t.state === 'running' || t.state === 'starting').map((t) => t.id).sort();
        assert.deepEqual(now.filter((id) => !before.get(n)!.includes(id)), [], `${n} started nothing during the partition`);
      }
      // The mesh on the majority keeps answering from majority tasks only.
      await meshEverywhere(MAJORITY, 30_000, 'during the partition');
    } finally {
      const h = await netctl(['lab', 'fault', 'heal', '--name', LAB]);
      assert.equal(h.code, 0, h.stderr);
    }
    const merged = await membership(NODES, NODES, 60_000);
    process.stdout.write(`# merged ${merged} ms after heal (all 5 nodes see all 5 alive)\n`);
    await waitFor('stale copies on the minority shut down; exactly 5 running', async () => {
      const r = running(await ps());
      if (r.length !== 5) return false;
      for (const n of MINORITY) {
        const live = (await agentTasks(n)).filter((t) => t.state === 'running' || t.state === 'draining');
        if (live.some((t) => !r.some((x) => x.id === t.id))) return false;
      }
      return true;
    }, 60_000, 500);
    const nodes = JSON.parse((await on('n1', 'node', 'ls', '--format', 'json')).stdout) as Array<{ hostname: string; state: string }>;
    assert.deepEqual(nodes.map((n) => n.state), NODES.map(() => 'ready'));
    await meshEverywhere(NODES, 30_000, 'after the heal');
  });

  test('every agent killed and restarted at once, then staggered: membership, overlay, mesh and names come back', async () => {
    for (const n of NODES) assert.equal((await netctl(['lab', 'kill', n, '--name', LAB])).code, 0);
    const t0 = Date.now();
    await Promise.all(NODES.map(async (n) => assert.equal((await netctl(['lab', 'start', n, '--name', LAB])).code, 0)));
    await membership(NODES, NODES, 60_000);
    process.stdout.write(`# all at once: full membership ${Date.now() - t0} ms after the restarts began\n`);
    await meshEverywhere(NODES, 60_000, 'after all restarted at once');
    const all = new Set<string>();
    await waitFor('the mesh on n5 reaches all 5 tasks again', () => {
      for (const t of meshAnswers('n5', 10).seen) all.add(t);
      return all.size === 5;
    }, 60_000, 200);

    const beforeStagger = running(await ps());
    // What the down grace is compared with: how long the manager's gossip (n1) held each node dead. The
    // watcher polls n1's member list; a node's dead span is bounded above by the time from the last poll
    // that did not see it dead to the first poll that saw it alive again after its restart (or, if n1
    // never saw it dead, 0). n1 itself restarts with its manager, which never calls its own node down.
    const killedAt = new Map<string, number>();
    const startedAt = new Map<string, number>();
    const notDeadAt = new Map<string, number>();
    const deadSeen = new Set<string>();
    const backAt = new Map<string, number>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const t = Date.now();
        const r = await on('n1', 'debug', 'members', '--format', 'json').catch(() => undefined);
        if (r?.code === 0) {
          const states = new Map((JSON.parse(r.stdout) as MemberJ[]).map((m) => [m.name, m.state]));
          for (const n of NODES) {
            if (!killedAt.has(n) || backAt.has(n)) continue;
            const st = states.get(n);
            if (st === 'dead') deadSeen.add(n);
            else if (!deadSeen.has(n)) notDeadAt.set(n, t);
            if (st === 'alive' && startedAt.has(n)) backAt.set(n, Date.now());
          }
        }
        await new Promise((res) => setTimeout(res, 100));
      }
    })();
    const t1 = Date.now();
    try {
      for (const n of NODES) {
        killedAt.set(n, Date.now());
        notDeadAt.set(n, Date.now());
        assert.equal((await netctl(['lab', 'kill', n, '--name', LAB])).code, 0);
        await new Promise((r) => setTimeout(r, 500));
        assert.equal((await netctl(['lab', 'start', n, '--name', LAB])).code, 0);
        startedAt.set(n, Date.now());
        await new Promise((r) => setTimeout(r, 500));
      }
      await membership(NODES, NODES, 60_000);
      await waitFor('n1 saw every restarted node alive again', () => NODES.slice(1).every((n) => backAt.has(n)), 10_000, 100,
        () => `back: ${JSON.stringify(Object.fromEntries(backAt))}`);
    } finally {
      watching = false;
      await watcher;
    }
    process.stdout.write(`# staggered: full membership ${Date.now() - t1} ms after the first kill\n`);
    await meshEverywhere(NODES, 60_000, 'after the staggered restarts');
    let lastPs: TaskJ[] = [];
    const conv = await waitFor('exactly 5 running tasks again', async () => {
      lastPs = running(await ps());
      return lastPs.length === 5;
    }, 60_000, 500, () => `running: ${lastPs.map((x) => `${x.name}@${x.node}`).join(' ')}`);
    // The lab sets no manager.nodeDownGraceMs: the preset's default applies (local: 5000 ms).
    const grace = defaultNodeDownGraceMs(lab.gossipPreset as 'local' | 'lan' | 'wan');
    const downtime = new Map(NODES.slice(1).map((n) => [n, deadSeen.has(n) ? backAt.get(n)! - notDeadAt.get(n)! : 0]));
    const replacedOn = beforeStagger.filter((t) => !lastPs.some((x) => x.id === t.id)).map((t) => t.node!);
    process.stdout.write(`# staggered: 5 running ${conv.ms} ms after the mesh answered; dead in n1's gossip at most: ` +
      `${[...downtime].map(([n, ms]) => `${n} ${ms} ms`).join(', ')} (grace ${grace} ms; kill → seen alive: ` +
      `${NODES.slice(1).map((n) => `${n} ${backAt.get(n)! - killedAt.get(n)!} ms`).join(', ')}); tasks replaced on: ${replacedOn.join(',') || 'none'}\n`);
    assert.ok(!replacedOn.includes('n1'), 'the manager\'s own node is never called down by its restart');
    for (const [n] of downtime) {
      if (downtime.get(n)! < grace) assert.ok(!replacedOn.includes(n), `${n} was away ${downtime.get(n)} ms, under the ${grace} ms down grace, yet its task was replaced`);
    }
    // Names resolve inside a task on the network, through the overlay to a task on another node.
    const t = running(await ps()).find((x) => x.node === 'n2')!;
    await waitFor('web resolves and answers from inside a task', async () => {
      const r = await on('n2', 'exec', t.name, '--', 'curl', '-s', '-m', '3', 'http://web/');
      return r.code === 0 && /task: web\.\d/.test(r.stdout);
    }, 30_000, 500);
    let last = '';
    const { ms } = await waitFor('tasks.web lists all 5 tasks inside a task on n2', async () => {
      const d = await on('n2', 'exec', t.name, '--', 'dig', '+short', 'tasks.web', '@127.0.0.11');
      last = `${d.code} ${d.stdout}${d.stderr}`;
      return d.code === 0 && d.stdout.trim().split('\n').length === 5;
    }, 30_000, 500).catch((e: Error) => { throw new Error(`${e.message}; last answer: ${last}`); });
    process.stdout.write(`# tasks.web complete on n2 ${ms} ms after the mesh answered everywhere\n`);
  });
});
