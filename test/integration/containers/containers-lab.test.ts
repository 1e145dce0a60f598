/**
 * Services run real images through the cluster (issue 12), end to end through netctl on a
 * 3-node lab with Debian's docker.io: nginx, redis and busybox images built locally from
 * Debian packages (native-scripts/images.sh; never pulled). Nothing here names a runtime:
 * a non-`whoami` image goes to Docker by itself.
 *
 * - nginx on `front`, published on 8080: every node's :8080 answers and all 3 tasks are reached;
 * - redis on `back`; `app` on `front` AND `back` (two interfaces) reaches redis by name (PING →
 *   PONG) and web by name; `tasks.web` has 3 addresses;
 * - 20 containers whose first instruction resolves a name all start on the first try (the
 *   sandbox holds the network before the application starts);
 * - scale 3→1 and a rolling update nginx:1 → nginx:2 under a request loop: no failed request;
 * - `docker kill` of a task's container: the agent hears it from the events stream (time to the
 *   task's `failed` state printed), the replacement serves; the dead task is withdrawn from every
 *   node's LB and DNS (drain acks, printed) before its sandbox and address go, so a request sent
 *   to it in between is refused at once (curl exit 7 under 1 s), never lost into a 2 s timeout, and
 *   none sent after the acks fails (a connection to a process that was just killed cannot be
 *   answered by any balancer without retries);
 * - the same for kill -9 of a `whoami` task's process on the built-in netns runtime (its
 *   namespace is the sandbox);
 * - teardown leaves no container behind (also the sandboxes).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { inNs, type CliResult } from '../../helpers/cli.js';
import { agentClient, waitFor } from '../../helpers/lab.js';
import { IMAGES } from '../../helpers/docker.js';
import type { LabState } from '../../../src/lab/lab.js';
import type { DrainResult } from '../../../src/agent/drain/wait.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';

/** CTR_LAB: another lab name, so two checkouts can run this file side by side. */
const LAB = process.env.CTR_LAB ?? 'mctr';
const L = new DockerLab(LAB);
let lab: LabState;
const on = (node: string, ...args: string[]) => L.on(node, ...args);
const m = (...args: string[]) => L.m(...args);
interface TaskJ { id: string; name: string; slot?: number; node: string | null; desiredState: string; state: string; error?: string | null; message?: string; image: string; runtime?: string; updatedAt: string }
async function ps(service: string): Promise<TaskJ[]> {
  return JSON.parse(ok(await m('service', 'ps', service, '--format', 'json'), `ps ${service}`).stdout) as TaskJ[];
}
/** One HTTP GET from the lab client namespace (curl, bounded). */
function get(url: string): string | null {
  const r = inNs(lab.client.netns, ['curl', '-s', '-m', '2', url], 5000);
  return r.code === 0 ? r.stdout.trim() : null;
}
/** `exec` in a task of `service` (on whichever node runs it). */
async function execIn(service: string, argv: string[]): Promise<CliResult> {
  const t = (await ps(service)).find((x) => x.desiredState === 'running' && x.state === 'running');
  assert.ok(t, `a running task of ${service}`);
  return on(t.node!, 'exec', t.name, '--', ...argv);
}

/** One request of a loop: when it was sent and ended (ms since the epoch), curl's exit code, the answering task. */
interface Sent { start: number; end: number; code: number; answer: string; /** curl's own time_total (ms): without the spawn's delay on a loaded machine. */ curlMs: number }

/** nginx's answer (`nginx v1 <task>`) → the task; anything else is a failure. */
const nginxTask = (body: string): string | null => (body.startsWith('nginx') ? body.trim().split(' ').slice(1).join(' ') : null);
/** whoami's answer (`task: web.1.<id>` first) → the task. */
const whoamiTask = (body: string): string | null => /^task: (\S+)/.exec(body)?.[1] ?? null;

/** Loop results: every request, the failed ones, answers by body. */
type LoopResult = { sent: number; failed: Array<{ at: number; start: number; why: string }>; answers: Map<string, number>; all: Sent[] };

/** Written by curl (`-w`) after the body: its own total time in seconds follows. */
const TIME_MARK = '\n@curl-time ';

/** A steady request loop from the client to one node's published port; returns what happened. */
function requestLoop(url: string, served: (body: string) => string | null = nginxTask): { stop: () => Promise<LoopResult> } {
  let running = true;
  const all: Sent[] = [];
  /** `start`: when the request was sent; `at`: when it failed (a timeout fails 2 s after it started). */
  const failed: Array<{ at: number; start: number; why: string }> = [];
  const answers = new Map<string, number>();
  let sent = 0;
  const loop = (async () => {
    while (running) {
      sent++;
      const start = Date.now();
      const r = await new Promise<CliResult>((resolve) => {
        const c = spawnSync('ip', ['netns', 'exec', lab.client.netns, 'curl', '-s', '-m', '2', '-w', `${TIME_MARK}%{time_total}`, url], { encoding: 'utf8', timeout: 5000 });
        resolve({ code: c.status ?? 128, stdout: c.stdout ?? '', stderr: c.stderr ?? '' });
      });
      const mark = r.stdout.lastIndexOf(TIME_MARK);
      const curlMs = mark < 0 ? NaN : Math.round(Number(r.stdout.slice(mark + TIME_MARK.length)) * 1000);
      if (mark >= 0) r.stdout = r.stdout.slice(0, mark);
      const task = r.code === 0 ? served(r.stdout) : null;
      all.push({ start, end: Date.now(), code: task === null && r.code === 0 ? -1 : r.code, answer: task ?? r.stdout.slice(0, 40), curlMs });
      if (task !== null) answers.set(r.stdout.trim(), (answers.get(r.stdout.trim()) ?? 0) + 1);
      else failed.push({ at: Date.now(), start, why: `curl exit ${r.code} ${r.stdout.slice(0, 80)}` });
      await new Promise((res) => setTimeout(res, 50));
    }
  })();
  return { stop: async () => { running = false; await loop; return { sent, failed, answers, all }; } };
}

/**
 * Judges the requests around the death of task `victim` (killed at `killedAt`, reported failed `ms`
 * later) and prints them with what the agent waited on (the dead task's drain).
 */
async function judgeKill(r: LoopResult, killedAt: number, ms: number, victim: TaskJ): Promise<void> {
  // A request counts by when it was SENT: one sent just before the LB dropped the dead task hangs for curl's 2 s
  // and failed (clean clone, 2026-12-07: sent +289 ms, 118 ms after the report, recorded +2289 ms) — judging it by
  // its end made it 'late' whenever the report came fast.
  const near = r.all.filter((x) => x.start >= killedAt - 300 && x.start <= killedAt + ms + 2500);
  process.stdout.write(`# requests around the kill (sent +ms: took ms (curl's own time), curl exit, task): ${near.map((x) => `+${x.start - killedAt}: ${x.end - x.start} ms (${x.curlMs}) ${x.code}${x.code === 0 ? ` ${x.answer.slice(0, 20)}` : ' FAIL'}`).join('; ')}\n`);
  const late = r.failed.filter((f) => f.start > killedAt + ms + 2000);
  process.stdout.write(`# loop around the kill: ${r.sent} requests, ${r.failed.length} failed (${r.failed.map((f) => `sent +${f.start - killedAt} ms, failed +${f.at - killedAt} ms ${f.why}`).join('; ')})\n`);
  assert.deepEqual(late, [], 'no request fails once the death was reported and the LB had time to drop it');
  // The dead task's sandbox (and address) stays until every node acked that its LB and DNS dropped
  // it: what the agent waited on, and when it ended.
  const waits = (await agentClient(lab, victim.node!).call<{ recent: DrainResult[] }>('GET', '/v1/drain/waits')).recent;
  const drained = waits.find((w) => w.taskId === victim.id);
  process.stdout.write(`# drain of the dead task: ${drained ? `${drained.outcome} after ${drained.ms} ms, ended +${drained.endedAt - killedAt} ms; acks ${drained.acks.map((a) => `${a.node}/${a.network.slice(0, 6)} ${a.ms ?? '?'} ms`).join(', ')}; pending ${JSON.stringify(drained.pending)}` : 'none recorded'}\n`);
  assert.equal(drained?.outcome, 'acked', `every node acked the dead task's removal (${JSON.stringify(drained)})`);
  // Until then the sandbox refuses a connection at once (RST: nothing listens); a SYN lost to a
  // vanished address would hang for the client's retransmits (curl exit 28 after 2 s).
  const hung = r.all.filter((x) => x.start >= killedAt && x.code !== 0 && (x.code !== 7 || !(x.curlMs < 1000)));
  assert.deepEqual(hung, [], 'a request to the dead task is refused fast (curl exit 7, under the 1 s SYN retransmit), never hangs');
  const afterDrop = r.all.filter((x) => x.start > drained!.endedAt && x.code !== 0);
  assert.deepEqual(afterDrop, [], 'no request sent after every node dropped the dead task fails');
}

before(async () => {
  lab = await L.up({ nodes: 3, networks: ['front', 'back'] });
});
after(async () => {
  if (process.env.CTR_KEEP_LAB) return; // debugging: leave the lab up (netctl lab down --name mctr)
  await L.down();
});

describe('services run Docker images (lab)', { timeout: 600_000 }, () => {
  test('nginx published on 8080: every node answers, all 3 tasks reached, tasks run in docker', async () => {
    ok(await m('service', 'create', '--name', 'web', '--replicas', '3', '-p', '8080:80', '--network', 'front', '--timeout', '180s', IMAGES.nginx1), 'create web');
    const tasks = (await ps('web')).filter((t) => t.desiredState === 'running');
    assert.equal(tasks.length, 3);
    assert.ok(tasks.every((t) => t.runtime === undefined || t.runtime === 'docker'), JSON.stringify(tasks));
    for (const n of lab.nodes) {
      const { value: seen } = await waitFor(`${n.name}:8080 reaches 3 distinct nginx tasks`, () => {
        const s = new Set<string>();
        for (let i = 0; i < 15; i++) {
          const a = get(`http://${n.underlay}:8080/`);
          if (a?.startsWith('nginx v1 ')) s.add(a);
        }
        return s.size === 3 && s;
      }, 60_000, 500);
      process.stdout.write(`# ${n.name}:8080 → ${[...seen].join(' | ')}\n`);
    }
  });

  test('redis on back, app on front and back: app reaches redis (PING → PONG) and web by name; tasks.web has 3 addresses', async () => {
    ok(await m('service', 'create', '--name', 'redis', '--network', 'back', '--timeout', '180s', IMAGES.redis), 'create redis');
    ok(await m('service', 'create', '--name', 'app', '--network', 'front', '--network', 'back', '--timeout', '180s', IMAGES.busybox, 'sleep', '3600'), 'create app');
    const ifs = ok(await execIn('app', ['ip', '-o', '-4', 'addr', 'show']), 'ip addr in app').stdout;
    assert.match(ifs, /eth0/);
    assert.match(ifs, /eth1/, `two interfaces in app:\n${ifs}`);
    await waitFor('app: redis answers PONG by name', async () => {
      const r = await execIn('app', ['sh', '-c', "printf 'PING\\r\\n' | nc -w 2 redis 6379"]);
      return r.code === 0 && r.stdout.includes('+PONG') && r;
    }, 30_000, 500);
    await waitFor('app: web answers by name', async () => {
      const r = await execIn('app', ['sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 2 web 80']);
      return r.code === 0 && /nginx v1 /.test(r.stdout) && r;
    }, 30_000, 500);
    const { value: addrs } = await waitFor('tasks.web: 3 addresses', async () => {
      const r = await execIn('app', ['nslookup', 'tasks.web', '127.0.0.11']);
      const ips = [...r.stdout.matchAll(/Address(?: \d+)?:\s*(\d+\.\d+\.\d+\.\d+)/g)].map((x) => x[1]!).filter((ip) => ip !== '127.0.0.11');
      return new Set(ips).size === 3 && ips;
    }, 30_000, 500);
    process.stdout.write(`# tasks.web → ${addrs.join(', ')}\n`);
  });

  test('20 containers whose first instruction resolves a name all start first time (the network exists before the app)', async () => {
    ok(await m('service', 'create', '--name', 'first', '--replicas', '20', '--network', 'front', '--timeout', '300s',
      IMAGES.busybox, 'sh', '-c', 'grep -q "^nameserver 127.0.0.11" /etc/resolv.conf && nslookup web 127.0.0.11 >/dev/null && exec sleep 3600 || exit 7'), 'create first');
    const tasks = await ps('first');
    const bad = tasks.filter((t) => t.state !== 'running');
    assert.deepEqual(bad.map((t) => `${t.name} ${t.state} ${t.error ?? ''}`), [], 'every start succeeded');
    assert.equal(tasks.length, 20, 'no task was replaced (a failed start would leave a failed task in the history)');
    ok(await m('service', 'rm', 'first'), 'rm first');
  });

  test('scale 3→1→3 and a rolling update nginx:1 → nginx:2 under a request loop: no failed request', async () => {
    const loop = requestLoop(`http://${lab.nodes[1]!.underlay}:8080/`);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      ok(await m('service', 'scale', 'web=1'), 'scale 1');
      ok(await m('service', 'scale', 'web=3'), 'scale 3');
      ok(await m('service', 'update', '--image', IMAGES.nginx2, '--update-parallelism', '1', '--update-delay', '1s', '--timeout', '240s', 'web'), 'update');
      await waitFor('every answer from nginx v2', () => [0, 1, 2, 3, 4].every(() => get(`http://${lab.nodes[2]!.underlay}:8080/`)?.startsWith('nginx v2 ')), 30_000, 500);
    } finally {
      await loop.stop(); // also when a step fails: a loop left running keeps the test process alive
    }
    const r = await loop.stop();
    process.stdout.write(`# loop: ${r.sent} requests, ${r.failed.length} failed; answers by task: ${[...r.answers].map(([k, v]) => `${k.split(' ').slice(1).join(' ')}=${v}`).join(' ')}\n`);
    assert.deepEqual(r.failed, [], 'no failed request during scale and rolling update');
  });

  test('docker kill of a task: the events stream reports it at once, the replacement serves', async () => {
    const victim = (await ps('web')).find((t) => t.desiredState === 'running' && t.state === 'running')!;
    const name = spawnSync('docker', ['ps', '-q', '--filter', `label=meshd.task=${victim.id}`, '--filter', 'label=meshd.role=app'], { encoding: 'utf8' }).stdout.trim();
    assert.ok(name, `container of ${victim.name}`);
    const loop = requestLoop(`http://${lab.nodes[0]!.underlay}:8080/`);
    let stopped = false;
    const stopLoop = async () => {
      const x = await loop.stop();
      stopped = true;
      return x;
    };
    try {
    await new Promise((r) => setTimeout(r, 1000));
    const killedAt = Date.now();
    assert.equal(spawnSync('docker', ['kill', name]).status, 0);
    const { ms } = await waitFor(`${victim.name} reported failed`, async () => (await ps('web')).find((t) => t.id === victim.id && ['failed', 'shutdown', 'complete'].includes(t.state)), 30_000, 100);
    process.stdout.write(`# docker kill → task ${victim.name} failed after ${ms} ms (events stream)\n`);
    await waitFor('3 tasks running again, all serving', async () => {
      const all = await ps('web');
      const live = all.filter((t) => t.desiredState === 'running' && t.state === 'running');
      const s = new Set<string>();
      for (let i = 0; i < 15; i++) s.add(get(`http://${lab.nodes[0]!.underlay}:8080/`) ?? '(failed)');
      if (live.length === 3 && s.size === 3 && !s.has('(failed)')) return s;
      // Thrown, so the timeout names what was seen last.
      throw new Error(`tasks ${all.map((t) => `${t.name.split('.').slice(0, 2).join('.')}:${t.id.slice(0, 6)}:${t.desiredState}/${t.state}`).join(' ')}; answers ${[...s].join(' | ')}`);
    }, 60_000, 500);
    await judgeKill(await stopLoop(), killedAt, ms, victim);
    } finally {
      if (!stopped) await loop.stop();
    }
  });

  test('kill -9 of a netns task\'s process (whoami, the built-in runtime): withdrawn before its namespace goes, no request hangs', async () => {
    ok(await m('service', 'create', '--name', 'who', '--replicas', '3', '-p', '8081:80', '--network', 'front', '--timeout', '120s', 'whoami'), 'create who');
    const url = `http://${lab.nodes[0]!.underlay}:8081/`;
    await waitFor('n1:8081 reaches 3 whoami tasks', () => {
      const s = new Set<string>();
      for (let i = 0; i < 15; i++) s.add(whoamiTask(get(url) ?? '') ?? '(failed)');
      return s.size === 3 && !s.has('(failed)') && s;
    }, 60_000, 500);
    const victim = (await ps('who')).find((t) => t.desiredState === 'running' && t.state === 'running')!;
    assert.equal(victim.runtime ?? 'netns', 'netns', 'whoami runs on the netns runtime');
    const view = await agentClient(lab, victim.node!).call<Array<{ id: string; pid: number | null }>>('GET', '/v1/tasks');
    const pid = view.find((t) => t.id === victim.id)?.pid;
    assert.ok(pid, `pid of ${victim.name} (${JSON.stringify(view.map((t) => [t.id, t.pid]))})`);
    const loop = requestLoop(url, whoamiTask);
    let stopped = false;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      const { ms } = await waitFor(`${victim.name} reported failed`, async () => (await ps('who')).find((t) => t.id === victim.id && ['failed', 'shutdown', 'complete'].includes(t.state)), 30_000, 100);
      process.stdout.write(`# kill -9 → task ${victim.name} failed after ${ms} ms (the agent's child exit)\n`);
      await waitFor('3 who tasks running again, all serving', async () => {
        const live = (await ps('who')).filter((t) => t.desiredState === 'running' && t.state === 'running');
        const s = new Set<string>();
        for (let i = 0; i < 15; i++) s.add(whoamiTask(get(url) ?? '') ?? '(failed)');
        if (live.length === 3 && s.size === 3 && !s.has('(failed)')) return s;
        throw new Error(`running ${live.map((t) => t.name).join(' ')}; answers ${[...s].join(' | ')}`);
      }, 60_000, 500);
      const r = await loop.stop();
      stopped = true;
      await judgeKill(r, killedAt, ms, victim);
    } finally {
      if (!stopped) await loop.stop();
    }
    ok(await m('service', 'rm', 'who'), 'rm who');
  });

  test('teardown: removing the services leaves no container or sandbox of this lab', async () => {
    for (const s of ['app', 'redis', 'web']) ok(await m('service', 'rm', s), `rm ${s}`);
    await waitFor('no container left', () => L.containers().length === 0, 60_000, 500);
  });
});
