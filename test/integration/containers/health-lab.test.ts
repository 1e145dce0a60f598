/**
 * Health checks drive the mesh (issue 12 item 5), end to end on a 2-node lab with Debian's
 * docker.io and the locally built nginx image (never pulled). The check is docker's own
 * (`--health-cmd`, handed to the Engine; its verdicts come back on the events stream):
 * `test -f /tmp/ready && test ! -f /tmp/unhealthy`, so the test decides when a task turns
 * healthy or unhealthy by touching files in it (agent API exec).
 *
 * (a) a task with a check is neither a backend (every node's :8081) nor a DNS answer
 *     (`tasks.hweb` from a container on every node) until healthy; `service ps` says
 *     `running (starting)`, then `running (healthy)` (a long start period keeps a task
 *     `starting` until the test makes it ready: failures inside it do not count);
 * (b) a task that turns unhealthy is drained out of every node's LB and DNS with the confirmed
 *     drain (every member acked: the worker's drain outcome `acked`) before it is stopped and
 *     reported failed; a request loop through both nodes sees no failure, and no answer from it
 *     after it was reported; its replacement is no backend and no DNS answer until healthy;
 * (c) the netns runtime runs the same check itself (the agent's health shell, a command in the
 *     task's namespace from the host's filesystem): `running (starting)` until a host file exists,
 *     then `running (healthy)`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inNs } from '../../helpers/cli.js';
import { agentClient, waitFor } from '../../helpers/lab.js';
import { IMAGES } from '../../helpers/docker.js';
import type { LabState } from '../../../src/lab/lab.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';
import type { TaskView as AgentTask } from '../../../src/agent/worker/worker.js';

const LAB = 'mhlt';
const CHECK = 'test -f /tmp/ready && test ! -f /tmp/unhealthy';
const L = new DockerLab(LAB);
const tmp = L.tmp;
/** The netns task's check looks for this host file (netns tasks run from the host's filesystem). */
const NETNS_READY = join(tmp, 'netns-ready');
let lab: LabState;
const m = (...args: string[]) => L.m(...args);
interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string; health?: string | null; error?: string | null; addresses: Record<string, string> }
async function ps(service: string): Promise<TaskJ[]> {
  return JSON.parse(ok(await m('service', 'ps', service, '--format', 'json'), `ps ${service}`).stdout) as TaskJ[];
}
const live = async (service: string) => (await ps(service)).filter((t) => t.desiredState === 'running' && t.state === 'running');
const host = (t: TaskJ) => t.id.slice(0, 12);

/** Runs argv in a task through its node's agent API (fast: no netctl process). */
async function exec(node: string, task: string, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return agentClient(lab, node).call('POST', `/v1/tasks/${encodeURIComponent(task)}/exec`, { argv, timeoutMs: 10_000 });
}
async function touch(t: TaskJ, file: string): Promise<void> {
  const r = await exec(t.node!, t.id, ['touch', file]);
  assert.equal(r.code, 0, `touch ${file} in ${t.name}: ${r.stderr}`);
}
/** One HTTP GET from the lab client namespace to a node's published port: the answering task's hostname, or null. */
function get(node: number): string | null {
  const r = inNs(lab.client.netns, ['curl', '-s', '-m', '2', `http://${lab.nodes[node]!.underlay}:8081/`], 5000);
  return r.code === 0 && r.stdout.startsWith('nginx') ? r.stdout.trim().split(' ')[2] ?? '' : null;
}
/** Hostnames answering on each node's :8081 over `n` requests each ('(failed)' for a failure). */
function answers(n = 8): Array<Set<string>> {
  return lab.nodes.map((_, i) => {
    const s = new Set<string>();
    for (let k = 0; k < n; k++) s.add(get(i) ?? '(failed)');
    return s;
  });
}
/** `tasks.hweb` as the DNS of each node answers it (from the node's `hdns` container), sorted. */
async function dnsTasks(): Promise<string[][]> {
  const out: string[][] = [];
  for (const n of lab.nodes) {
    const t = (await agentClient(lab, n.name).call<AgentTask[]>('GET', '/v1/tasks')).find((x) => x.service === 'hdns' && x.state === 'running');
    assert.ok(t, `an hdns task on ${n.name}`);
    const r = await exec(n.name, t.id, ['nslookup', 'tasks.hweb', '127.0.0.11']);
    out.push([...new Set([...r.stdout.matchAll(/Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)/g)].map((x) => x[1]!).filter((ip) => ip !== '127.0.0.11'))].sort());
  }
  return out;
}
const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

before(async () => {
  lab = await L.up({ nodes: 2, networks: ['front'] });
  // One plain container per node (no check) to ask each node's DNS.
  ok(await m('service', 'create', '--name', 'hdns', '--mode', 'global', '--network', 'front', '--timeout', '180s', IMAGES.busybox, 'sleep', '3600'), 'create hdns');
});
after(async () => {
  await L.down();
});

describe('health checks drive the mesh (docker lab)', { timeout: 300_000 }, () => {
  let a: TaskJ;
  let b: TaskJ;

  test('(a) a task with a check is a backend and a DNS answer only once healthy; ps shows running (starting|healthy)', async () => {
    ok(await m('service', 'create', '--name', 'hweb', '--replicas', '2', '-p', '8081:80', '--network', 'front', '-d',
      '--health-cmd', CHECK, '--health-interval', '300ms', '--health-timeout', '5s', '--health-retries', '2',
      // Failures inside the start period do not count: a task stays `starting` until the test makes it ready.
      '--health-start-period', '5m', IMAGES.nginx1), 'create hweb');
    const { value: two } = await waitFor('2 hweb tasks running (starting)', async () => {
      const all = await ps('hweb');
      const l = all.filter((t) => t.desiredState === 'running' && t.state === 'running');
      if (l.length === 2 && l.every((t) => t.health === 'starting')) return l;
      throw new Error(all.map((t) => `${t.name.split('.').slice(0, 2).join('.')}:${t.desiredState}/${t.state}/${t.health ?? '-'} ${t.error ?? ''}`).join('; '));
    }, 90_000, 500);
    [a, b] = two as [TaskJ, TaskJ];
    assert.match(ok(await m('service', 'ps', 'hweb'), 'ps').stdout, /running \(starting\)/);
    assert.deepEqual(answers(3).map((s) => [...s]), lab.nodes.map(() => ['(failed)']), 'no backend on any node while starting: the VIP rejects');
    assert.deepEqual(await dnsTasks(), lab.nodes.map(() => []), 'tasks.hweb has no address on any node while starting');

    await touch(a, '/tmp/ready');
    await waitFor(`every node serves ${host(a)} only (${host(b)} still starting)`, () => {
      const seen = answers();
      return seen.every((s) => s.size === 1 && s.has(host(a))) && seen.map((s) => [...s]);
    }, 30_000, 300);
    await waitFor('every node\'s DNS: tasks.hweb = a only', async () => (await dnsTasks()).every((ips) => same(ips, [a.addresses.front!])), 15_000, 300);

    await touch(b, '/tmp/ready');
    await waitFor('every node serves both tasks', () => {
      const seen = answers(12);
      return seen.every((s) => s.size === 2 && s.has(host(a)) && s.has(host(b))) && seen.map((s) => [...s]);
    }, 30_000, 300);
    const want = [a.addresses.front!, b.addresses.front!].sort();
    await waitFor('every node\'s DNS: tasks.hweb = a and b', async () => (await dnsTasks()).every((ips) => same(ips, want)), 15_000, 300);
    // The manager learns health from the agents' status reports (every second, manager-link.ts pollMs), so its
    // view may trail the mesh's by a report: wait for it, bounded, printing the last table on timeout.
    const { value: table } = await waitFor('service ps shows both tasks running (healthy)', async () => {
      const t = ok(await m('service', 'ps', 'hweb'), 'ps').stdout;
      if (t.match(/running \(healthy\)/g)?.length === 2) return t;
      throw new Error(t);
    }, 15_000, 300);
    assert.equal(String(table).match(/running \(healthy\)/g)?.length, 2, String(table));
  });

  test('(b) unhealthy: drained out of every LB and DNS before the stop, no failed request; the replacement joins once healthy', async () => {
    assert.ok(a && b, 'test (a) ran');
    const victim = b;
    const log: Array<{ at: number; who: string | null }> = [];
    let running = true;
    const loop = (async () => {
      for (let i = 0; running; i++) {
        log.push({ at: Date.now(), who: get(i % lab.nodes.length) });
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    let failedAt = 0;
    let view: AgentTask | undefined;
    let nodeView: AgentTask | undefined;
    try {
      await new Promise((r) => setTimeout(r, 500));
      const t0 = Date.now();
      await touch(victim, '/tmp/unhealthy');
      // The node's view says how the task ended there (drain outcome; still answered after the manager replaced
      // the task and the node forgot it — worker keepEnded); the manager's record keeps the failure and its error.
      // The node's own view keeps them too: the task had ended, so the manager's shutdown neither stops it again
      // nor rewrites it 'stopped' (worker/removal.ts, HeldTask.ended).
      ({ value: view } = await waitFor(`${victim.name} drained, stopped and failed on ${victim.node}`, async () => {
        const v = await agentClient(lab, victim.node!).call<AgentTask>('GET', `/v1/tasks/${victim.id}`);
        if (v.state !== 'failed' && v.state !== 'stopped') return false;
        const rec = (await ps('hweb')).find((t) => t.id === victim.id);
        if (rec?.state === 'failed') nodeView = v;
        return rec?.state === 'failed' && { ...v, error: rec.error ?? null };
      }, 30_000, 100));
      failedAt = Date.now();
      process.stdout.write(`# unhealthy → failed after ${failedAt - t0} ms; drain ${JSON.stringify(view.drain)}; error: ${view.error}\n`);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      running = false;
      await loop;
    }
    assert.equal(view!.drain?.outcome, 'acked', 'every member confirmed the task out of its LB and DNS before the stop');
    assert.match(view!.error ?? '', /^unhealthy: /);
    assert.equal(nodeView?.state, 'failed', `the node's own view keeps how the task ended: ${JSON.stringify(nodeView)}`);
    assert.match(nodeView?.error ?? '', /^unhealthy: /);
    const failed = log.filter((x) => x.who === null);
    const late = log.filter((x) => x.who === host(victim) && x.at >= failedAt);
    process.stdout.write(`# loop: ${log.length} requests, ${failed.length} failed, victim answered ${log.filter((x) => x.who === host(victim)).length} (last at ${Math.max(0, ...log.filter((x) => x.who === host(victim)).map((x) => x.at)) - failedAt} ms from failed)\n`);
    assert.deepEqual(failed, [], 'no failed request while the unhealthy task was drained and stopped');
    assert.deepEqual(late, [], 'no answer from the task after its drain');
    assert.deepEqual(await dnsTasks(), lab.nodes.map(() => [a.addresses.front!]), 'tasks.hweb lost it on every node');

    const { value: repl } = await waitFor('a replacement running (starting)', async () => (await live('hweb')).find((t) => t.id !== a.id && t.id !== victim.id && t.health === 'starting'), 60_000, 500);
    const table = ok(await m('service', 'ps', 'hweb'), 'ps').stdout;
    assert.match(table, /running \(starting\)/);
    assert.match(table, /failed .*unhealthy: /);
    assert.deepEqual(answers(6).map((s) => [...s]), lab.nodes.map(() => [host(a)]), 'the replacement is no backend while starting');
    assert.deepEqual(await dnsTasks(), lab.nodes.map(() => [a.addresses.front!]), 'nor a DNS answer');
    await touch(repl, '/tmp/ready');
    await waitFor('every node serves a and the replacement', () => {
      const seen = answers(12);
      return seen.every((s) => s.size === 2 && s.has(host(a)) && s.has(host(repl))) && seen.map((s) => [...s]);
    }, 30_000, 300);
    const want = [a.addresses.front!, repl.addresses.front!].sort();
    await waitFor('every node\'s DNS: a and the replacement', async () => (await dnsTasks()).every((ips) => same(ips, want)), 15_000, 300);
  });

  test('(c) netns runtime: the agent runs the check in the task\'s namespace; starting until it passes', async () => {
    ok(await m('service', 'create', '--name', 'hnet', '--runtime', 'netns', '--network', 'front', '-d',
      '--health-cmd', `test -f ${NETNS_READY}`, '--health-interval', '300ms', '--health-retries', '2', '--health-start-period', '5m', 'whoami'), 'create hnet');
    await waitFor('hnet running (starting)', async () => (await live('hnet')).find((t) => t.health === 'starting'), 60_000, 300);
    writeFileSync(NETNS_READY, '');
    await waitFor('hnet running (healthy)', async () => (await live('hnet')).find((t) => t.health === 'healthy'), 15_000, 300);
    assert.match(ok(await m('service', 'ps', 'hnet'), 'ps').stdout, /running \(healthy\)/);
    ok(await m('service', 'rm', 'hnet'), 'rm hnet');
  });
});
