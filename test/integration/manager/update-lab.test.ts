/**
 * Rolling update and automatic rollback under a steady request loop, on a real 3-node lab
 * (manager on n1, workers n2/n3, netns runtime), through the routing mesh.
 *
 * Gossip preset `lan` (see before()). Service `web`: 6 replicas on overlay network `app`, published 8080:80 (so every task also
 * has an ingress address and each drain needs acks on `app` AND `ingress` from all 3 nodes).
 * v1 is the built-in whoami (answers `task/ip/node`); v2 is busybox httpd serving a page that
 * adds `version: v2` (a script file, argv of the service), so every answer names its version.
 *
 * The loop: from the lab client, one curl per node's underlay :8080 per round, a round every
 * 50 ms, each request stamped with its start time in the shell. Error policy (per case): NO
 * failed request at all —
 * - no refused (curl 7), reset / empty reply (56, 52) or HTTP error (22): the failures a drain
 *   that is too short causes (a stopped task still chosen by some node);
 * - no timeout (28): a node's LB selects a NEW remote backend only once that node's overlay has
 *   programmed its neighbour/FDB entries (core/lb/overlay-gate.ts). Before that gate, under heavy
 *   host load the LB ran 1-2 s ahead of its overlay and 1-2 requests per case timed out (their
 *   SYN went to a neighbour the kernel could not resolve yet). Each failure is printed.
 *
 * 1. update --image web:v2 --runtime netns (the image is a label: tasks stay host processes) --update-parallelism 2 --update-delay 1s: converges, no failed request in the loop,
 *    at the end every answer comes from a v2 task (and only from running v2 tasks), and
 *    the old tasks' drains were confirmed by acks of every member (GET /v1/drain/waits on the
 *    nodes: outcome `acked`, latency per task printed).
 * 2. update to a version that exits at once, --update-failure-action rollback --update-monitor
 *    2s: the service returns to v2 by itself (inspect shows v2's spec, state
 *    rollback_completed, all running tasks v2), no failed request in the loop.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netctl } from '../../helpers/cli.js';
import { agentClient, createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';
import type { DrainResult } from '../../../src/agent/drain/wait.js';

const LAB = 'upd';
const NODES = ['n1', 'n2', 'n3'];
const tmp = mkdtempSync(join(tmpdir(), 'meshd-upd-'));
const V2 = join(tmp, 'web-v2.sh');
let lab: LabState;
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args], { timeoutMs: 300_000 });

interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string; image: string; addresses: Record<string, string> }

async function ps(svc: string): Promise<TaskJ[]> {
  const r = await on('n1', 'service', 'ps', svc, '--format', 'json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as TaskJ[];
}
const running = (ts: TaskJ[]) => ts.filter((t) => t.desiredState === 'running' && t.state === 'running');

/** One answer of the loop: shell timestamp (ms), node url, body on one line (or ERR<curl exit>). */
interface Hit { t: number; url: string; body: string }
const isV2 = (h: Hit) => h.body.includes('version: v2');
const ipOf = (h: Hit) => /ip: (\S+)/.exec(h.body)?.[1] ?? '';
/** The answering task's name (`web.<slot>.<task id>`): unique, unlike its address (IPAM reuses a freed one). */
const taskOf = (h: Hit) => /task: (\S+)/.exec(h.body)?.[1] ?? '';

class Loop {
  private child: ChildProcess;
  private out = '';
  constructor(urls: string[]) {
    const script = `while :; do for u in ${urls.join(' ')}; do s=$(date +%s%3N); r=$(curl -sf -m 2 "$u") || r="ERR$?"; echo "$s $u $(echo "$r" | tr '\\n' ' ')"; done; sleep 0.05; done`;
    this.child = spawn('ip', ['netns', 'exec', lab.client.netns, 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    this.child.stdout!.on('data', (b: Buffer) => (this.out += b.toString()));
  }
  hits(): Hit[] {
    return this.out.split('\n').filter((l) => /^\d+ /.test(l)).map((l) => {
      const [t, url, ...rest] = l.split(' ');
      return { t: Number(t), url: url!, body: rest.join(' ').trim() };
    });
  }
  stop(): void {
    // The loop's shell and its curls: the whole process group we started.
    if (this.child.pid && this.child.exitCode === null) {
      try {
        process.kill(-this.child.pid, 'SIGTERM');
      } catch { /* already gone */ }
    }
  }
}

async function drainWaits(): Promise<DrainResult[]> {
  const out: DrainResult[] = [];
  for (const n of NODES) {
    const r = await agentClient(lab, n).call<{ recent: DrainResult[] }>('GET', '/v1/drain/waits');
    out.push(...r.recent);
  }
  return out;
}

function summary(hits: Hit[]): string {
  const byVer = { v1: hits.filter((h) => !h.body.startsWith('ERR') && !isV2(h)).length, v2: hits.filter(isV2).length };
  return `${hits.length} requests, ${hits.filter((h) => h.body.startsWith('ERR')).length} errors, v1 answers ${byVer.v1}, v2 answers ${byVer.v2}`;
}

let loop: Loop | undefined;

/**
 * The drain guarantee itself: no request that started after a task's drain was confirmed was
 * answered by that task (by the task name each answer carries). Same host clock for both.
 */
async function noAnswersAfterDrain(hits: Hit[], drains: DrainResult[]): Promise<number> {
  const all = await ps('web');
  let checked = 0;
  for (const d of drains) {
    const t = all.find((x) => x.id === d.taskId);
    if (!t) continue;
    checked++;
    // By name, not address: a new task may get the drained one's address and answer legitimately.
    const late = hits.filter((h) => h.t > d.endedAt && taskOf(h) === t.name);
    assert.deepEqual(late, [], `answers from ${t.name} (${d.taskId.slice(0, 12)}) after its drain was confirmed`);
  }
  return checked;
}

/** See the error policy in the header: no failed request (refused, reset, HTTP error or timeout). */
function checkErrors(hits: Hit[], what: string): void {
  const errors = hits.filter((h) => h.body.startsWith('ERR'));
  for (const e of errors) console.log(`# ${what}: failed request (curl ${e.body.slice(3)}) via ${e.url} started at ${e.t}`);
  assert.deepEqual(errors, [], `${what}: no refused, reset, HTTP-error or timed-out request`);
}

before(async () => {
  writeFileSync(V2, [
    '#!/bin/sh',
    `d=${tmp}/www-$MESHD_TASK_ID`,
    'mkdir -p "$d"',
    'printf \'task: %s\\nversion: v2\\nip: %s\\nnode: %s\\n\' "$MESHD_TASK_NAME" "$MESHD_TASK_IP" "$MESHD_NODE" > "$d/index.html"',
    'exec busybox httpd -f -p "${MESHD_WHOAMI_PORT:-80}" -h "$d"',
    '',
  ].join('\n'));
  chmodSync(V2, 0o755);
  // memberlist's LAN timings: on a loaded 2-core host the `local` preset's short probe timeouts
  // declare healthy agents dead now and then (tasks orphaned and rescheduled mid-update).
  lab = await createLab({ name: LAB, nodes: 3, gossipPreset: 'lan' });
});
after(async () => {
  loop?.stop();
  // Debugging: UPD_LOGS_DIR=/some/dir keeps a copy of the agents' logs before teardown.
  if (process.env.UPD_LOGS_DIR) {
    mkdirSync(process.env.UPD_LOGS_DIR, { recursive: true });
    for (const n of lab?.nodes ?? []) if (existsSync(n.log)) copyFileSync(n.log, join(process.env.UPD_LOGS_DIR, `${n.name}.log`));
  }
  await destroyLab(LAB);
  rmSync(tmp, { recursive: true, force: true });
});

describe('rolling update and rollback under a steady request loop (3-node lab)', { timeout: 600_000 }, () => {
  test('cluster: init on n1, join n2 and n3; web (6 × whoami v1) on app, published 8080', async () => {
    await joinLabCluster(lab, join(tmp, 'worker.token'), { json: false, timeoutMs: 300_000 });
    assert.equal((await on('n1', 'network', 'create', '-d', 'overlay', '--subnet', '10.21.0.0/24', 'app')).code, 0);
    const r = await on('n1', 'service', 'create', '--name', 'web', '--replicas', '6', '--network', 'app', '-p', '8080:80', '--timeout', '120s', 'whoami');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(running(await ps('web')).length, 6);
    // Every node's published port reaches all 6 tasks before the loop starts.
    const urls = lab.nodes.map((n) => `http://${n.underlay}:8080/`);
    const { ms } = await waitFor('mesh reaches 6 tasks from every node', async () => {
      const probe = new Loop(urls);
      await new Promise((res) => setTimeout(res, 4000));
      probe.stop();
      const hits = probe.hits();
      return NODES.every((_, i) => new Set(hits.filter((h) => h.url === urls[i] && !h.body.startsWith('ERR')).map(ipOf)).size === 6);
    }, 90_000, 500);
    console.log(`# web: 6 tasks reachable through every node's :8080 (${ms} ms after convergence)`);
  });

  test('update to v2 (parallelism 2, delay 1s): no failed request, every answer from v2 at the end, drains confirmed by acks', async () => {
    const urls = lab.nodes.map((n) => `http://${n.underlay}:8080/`);
    loop = new Loop(urls);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const t0 = Date.now();
      const up = await on('n1', 'service', 'update', 'web', '--image', 'web:v2', '--runtime', 'netns', '--update-parallelism', '2', '--update-delay', '1s', '--timeout', '240s', '--args', V2);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stderr, /verify: Service converged/);
      const took = Date.now() - t0;
      const tasks = running(await ps('web'));
      assert.equal(tasks.length, 6);
      assert.ok(tasks.every((t) => t.image === 'web:v2'), JSON.stringify(tasks.map((t) => t.image)));
      const v2Ips = new Set(tasks.flatMap((t) => Object.values(t.addresses)));
      // The loop settles on v2 everywhere, then stays there.
      await waitFor('only v2 answers', () => {
        const last = loop!.hits().slice(-30);
        return last.length === 30 && last.every(isV2);
      }, 30_000, 200);
      const mark = Date.now();
      await new Promise((r) => setTimeout(r, 3000));
      loop.stop();
      const hits = loop.hits();
      console.log(`# update v1 → v2 converged in ${took} ms; loop: ${summary(hits)}`);
      checkErrors(hits, 'rolling update');
      const tail = hits.filter((h) => h.t >= mark);
      assert.ok(tail.length >= 10, `requests at the end: ${tail.length}`);
      assert.ok(tail.every(isV2), 'every answer at the end comes from v2');
      assert.ok(tail.every((h) => v2Ips.has(ipOf(h))), 'and from a running v2 task');
      for (const u of urls) assert.ok(tail.some((h) => h.url === u), `answers through ${u}`);
      // Drains: the 6 v1 tasks were stopped after every member acked (not after a timeout, nor cut short).
      const drains = await drainWaits();
      const acked = drains.filter((d) => d.outcome === 'acked');
      for (const d of drains) console.log(`# drain ${d.taskId.slice(0, 12)}: ${d.outcome} in ${d.ms} ms on ${d.networks.join('+')}, acks ${d.acks.map((a) => `${a.network}/${a.node}:${a.ms ?? '?'}ms`).join(' ')}${d.pending.length ? `, pending ${d.pending.map((x) => `${x.network}/${x.node}`).join(' ')}` : ''}`);
      assert.ok(drains.length >= 6, `6 drains recorded, got ${drains.length}`);
      assert.deepEqual(drains.filter((d) => d.outcome !== 'acked').map((d) => `${d.taskId.slice(0, 12)}: ${d.outcome}, pending ${JSON.stringify(d.pending)}`), [], 'every drain confirmed by acks');
      assert.ok(acked.every((d) => d.networks.includes('ingress') && d.acks.length >= 6), 'acks from all 3 nodes on app and ingress');
      await noAnswersAfterDrain(hits, acked);
      const lat = acked.map((d) => d.ms).sort((a, b) => a - b);
      console.log(`# drain confirmation: ${acked.length}/${drains.length} by acks; latency ms min ${lat[0]} median ${lat[Math.floor(lat.length / 2)]} max ${lat.at(-1)}`);
    } finally {
      loop.stop();
    }
  });

  test('a version that exits at once, failure action rollback: back to v2 by itself, no failed request', async () => {
    const urls = lab.nodes.map((n) => `http://${n.underlay}:8080/`);
    const before = JSON.parse((await on('n1', 'service', 'inspect', 'web')).stdout) as Array<{ spec: { image: string; command?: string[] } }>;
    loop = new Loop(urls);
    try {
      await new Promise((r) => setTimeout(r, 1500));
      const t0 = Date.now();
      const bad = await on('n1', 'service', 'update', 'web', '--image', 'web:v3', '--runtime', 'netns', '--update-failure-action', 'rollback', '--update-monitor', '2s',
        '--update-parallelism', '2', '--update-delay', '1s', '--timeout', '240s', '--args', '/bin/false');
      assert.equal(bad.code, 0, bad.stderr);
      assert.match(bad.stderr, /rollback: /);
      const took = Date.now() - t0;
      const s = JSON.parse((await on('n1', 'service', 'inspect', 'web')).stdout) as Array<{ spec: { image: string; command?: string[] }; update: { state: string; message: string } }>;
      assert.equal(s[0]!.update.state, 'rollback_completed', s[0]!.update.message);
      assert.equal(s[0]!.spec.image, 'web:v2');
      assert.deepEqual(s[0]!.spec, before[0]!.spec, 'the previous spec is back');
      const tasks = running(await ps('web'));
      assert.equal(tasks.length, 6);
      assert.ok(tasks.every((t) => t.image === 'web:v2'), JSON.stringify(tasks.map((t) => t.image)));
      await new Promise((r) => setTimeout(r, 2000));
      loop.stop();
      const hits = loop.hits();
      console.log(`# failing update rolled back in ${took} ms (${s[0]!.update.message}); loop: ${summary(hits)}`);
      checkErrors(hits, 'failed update and rollback');
      const all = (await drainWaits()).filter((d) => d.endedAt >= t0);
      const drains = all.filter((d) => d.outcome === 'acked');
      const checked = await noAnswersAfterDrain(hits, drains);
      console.log(`# failed update and rollback: ${drains.length} drains confirmed by acks (${checked} checked for late answers), ${all.length - drains.length} not`);
      assert.deepEqual(all.filter((d) => d.outcome !== 'acked').map((d) => `${d.taskId.slice(0, 12)}: ${d.outcome}, pending ${JSON.stringify(d.pending)}`), [], 'every drain confirmed by acks');
      assert.ok(hits.length >= 30);
      assert.ok(hits.slice(-10).every(isV2));
    } finally {
      loop.stop();
    }
  });
});
