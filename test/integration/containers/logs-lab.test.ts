/**
 * `netctl service logs` (issue 12, item 6) end to end on a 2-node lab (`mlog`) with Debian's
 * docker.io: a 2-replica busybox service on the docker runtime (one task per node) and one
 * netns-runtime service. The tasks print known lines at start, then sleep as PID 1; a line
 * "written later" is a real write to the task's stdout (docker: `netctl exec` writing to
 * /proc/1/fd/1 inside the container; netns: the test writes to /proc/PID/fd/1 of the task's
 * process, its log file), so nothing here depends on a clock.
 *
 * - both tasks' lines, each prefixed `talk.N.<id12>@nX | `, from both nodes; --tail 1; -t;
 * - a TASK argument (slot name and id prefix) shows that task only;
 * - the netns service's lines, prefixed the same way;
 * - -f receives a line written after it started, for each runtime, and ends on Ctrl-C (SIGINT) with 0;
 * - -H names one agent: the other node's task is one clear line, the local one still shows, exit 6;
 * - unknown service/task → exit 3 with one line; bad --tail → exit 2 with one line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, writeSync } from 'node:fs';
import { NETCTL, netctl, type CliResult } from '../../helpers/cli.js';
import { agentClient, waitFor } from '../../helpers/lab.js';
import { IMAGES } from '../../helpers/docker.js';
import type { LabState } from '../../../src/lab/lab.js';
import { DockerLab, ok } from '../../helpers/docker-lab.js';

const LAB = 'mlog';
const L = new DockerLab(LAB);
let lab: LabState;
const on = (node: string, ...args: string[]) => L.on(node, ...args);
const m = (...args: string[]) => L.m(...args);
interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string }
async function current(service: string): Promise<TaskJ[]> {
  const all = JSON.parse(ok(await m('service', 'ps', service, '--format', 'json'), `ps ${service}`).stdout) as TaskJ[];
  return all.filter((t) => t.desiredState === 'running').sort((a, b) => (a.name < b.name ? -1 : 1));
}
const prefixOf = (t: TaskJ) => `${t.name.slice(0, t.name.length - t.id.length)}${t.id.slice(0, 12)}@${t.node}`;

/** `service logs -f ...` running in the background; stop() sends SIGINT (Ctrl-C) and resolves with its result. */
function follow(...args: string[]): { out: () => string; stop: () => Promise<CliResult & { ms: number }> } {
  const child = spawn(process.execPath, [NETCTL, '--lab', LAB, '--node', 'n1', 'service', 'logs', '-f', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const closed = new Promise<number>((resolve) => child.once('close', (c, sig) => resolve(c ?? (sig ? 128 : 1))));
  return {
    out: () => stdout,
    stop: async () => {
      const t0 = Date.now();
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await closed;
      clearTimeout(timer);
      return { code, stdout, stderr, ms: Date.now() - t0 };
    },
  };
}

const START = 'echo "hello 1 from $MESHD_TASK_NAME"; echo "hello 2"; exec sleep 3600';

before(async () => {
  lab = await L.up({ nodes: 2, networks: ['app'] });
  ok(await m('service', 'create', '--name', 'talk', '--replicas', '2', '--network', 'app', '--timeout', '180s', IMAGES.busybox, 'sh', '-c', START), 'create talk');
  ok(await m('service', 'create', '--name', 'pt', '--runtime', 'netns', '--network', 'app', '--timeout', '180s', 'busybox', 'sh', '-c', 'echo netns one; echo netns two; exec sleep 3600'), 'create pt');
});
after(async () => {
  await L.down();
});

describe('netctl service logs (lab)', { timeout: 600_000 }, () => {
  test('lines of both docker tasks from both nodes, each prefixed TASK@NODE; --tail 1; -t', async () => {
    const tasks = await current('talk');
    assert.equal(tasks.length, 2);
    assert.deepEqual(new Set(tasks.map((t) => t.node)), new Set(['n1', 'n2']), `one task per node: ${JSON.stringify(tasks)}`);
    const width = Math.max(...tasks.map((t) => prefixOf(t).length));
    const pre = (t: TaskJ) => `${prefixOf(t).padEnd(width)} | `;
    // The first lines may take a moment to reach the engine's log after `running`.
    const { value: all } = await waitFor('4 lines from talk', async () => {
      const r = ok(await m('service', 'logs', 'talk'), 'logs talk');
      return r.stdout.split('\n').filter(Boolean).length === 4 && r.stdout;
    }, 20_000, 500);
    for (const t of tasks) {
      const mine = all.split('\n').filter((l) => l.startsWith(pre(t)));
      assert.equal(mine.length, 2, `2 lines of ${t.name}:\n${all}`);
      assert.match(mine[0]!, /\| hello 1 from talk\.\d\./);
      assert.equal(mine[1], `${pre(t)}hello 2`);
    }
    const tail = ok(await m('service', 'logs', '--tail', '1', 'talk'), 'logs --tail 1').stdout.split('\n').filter(Boolean).sort();
    assert.deepEqual(tail, tasks.map((t) => `${pre(t)}hello 2`).sort());
    const ts = ok(await m('service', 'logs', '-t', '--tail', '1', 'talk'), 'logs -t').stdout.split('\n').filter(Boolean);
    assert.equal(ts.length, 2);
    for (const l of ts) assert.match(l, /\| \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z hello 2$/);
  });

  test('a TASK argument (slot name, id prefix) shows that task only', async () => {
    const [t1, t2] = await current('talk');
    const bySlot = ok(await m('service', 'logs', t1!.name.split('.').slice(0, 2).join('.')), 'logs talk.N').stdout;
    assert.deepEqual(bySlot.split('\n').filter(Boolean).map((l) => l.split(' | ')[0]), [prefixOf(t1!), prefixOf(t1!)]);
    const byId = ok(await m('service', 'logs', '--tail', '1', t2!.id.slice(0, 8)), 'logs ID').stdout;
    assert.equal(byId, `${prefixOf(t2!)} | hello 2\n`);
  });

  test('netns runtime: the task log file, prefixed the same way; -t says it keeps no timestamps', async () => {
    const [t] = await current('pt');
    assert.ok(t?.node);
    const r = ok(await m('service', 'logs', 'pt'), 'logs pt');
    assert.equal(r.stdout, `${prefixOf(t)} | netns one\n${prefixOf(t)} | netns two\n`);
    const ts = ok(await m('service', 'logs', '-t', 'pt'), 'logs -t pt');
    assert.equal(ts.stdout, r.stdout);
    assert.match(ts.stderr, /the netns runtime keeps no timestamps/);
  });

  test('-f receives lines written after it started (docker and netns) and ends on Ctrl-C with 0', async () => {
    const [t1, t2] = await current('talk');
    const [p] = await current('pt');
    const f = follow('--tail', '0', 'talk');
    const g = follow('--tail', '0', 'pt');
    try {
      let k = 0;
      // Written until one arrives: a write before the stream opened is (rightly) not followed.
      await waitFor('a line written into talk after -f started', async () => {
        const mark = `later-${++k}`;
        ok(await on(t2!.node!, 'exec', t2!.name, '--', 'sh', '-c', `echo ${mark} > /proc/1/fd/1`), 'exec echo');
        await new Promise((r) => setTimeout(r, 300));
        return f.out().includes(`${prefixOf(t2!)} | later-`) && f.out();
      }, 20_000, 200, () => `stdout so far: ${JSON.stringify(f.out())}`);
      const view = await agentClient(lab, p!.node!).call<Array<{ id: string; pid: number | null }>>('GET', '/v1/tasks');
      const pid = view.find((x) => x.id === p!.id)?.pid;
      assert.ok(pid, `pid of ${p!.name}`);
      let j = 0;
      await waitFor('a line written into pt after -f started', async () => {
        const fd = openSync(`/proc/${pid}/fd/1`, 'a');
        writeSync(fd, `netns later-${++j}\n`);
        closeSync(fd);
        await new Promise((r) => setTimeout(r, 300));
        return g.out().includes(`${prefixOf(p!)} | netns later-`) && g.out();
      }, 20_000, 200, () => `stdout so far: ${JSON.stringify(g.out())}`);
      assert.ok(!f.out().includes(prefixOf(t1!)), `--tail 0: nothing old, and ${t1!.name} wrote nothing new:\n${f.out()}`);
    } finally {
      const rf = await f.stop();
      const rg = await g.stop();
      assert.equal(rf.code, 0, `talk -f after SIGINT: ${rf.stderr}`);
      assert.equal(rg.code, 0, `pt -f after SIGINT: ${rg.stderr}`);
      process.stdout.write(`# -f ended ${rf.ms} ms / ${rg.ms} ms after SIGINT\n`);
    }
  });

  test('-H names one agent: the other node\'s task is read through it (its peer API, this node being a manager)', async () => {
    const tasks = await current('talk');
    const remote = tasks.find((t) => t.node === 'n2')!;
    const local = tasks.find((t) => t.node === 'n1')!;
    const r = await netctl(['-H', `unix://${lab.nodes[0]!.socket}`, 'service', 'logs', '--tail', '1', 'talk']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.stdout);
    for (const t of [local, remote]) assert.ok(lines.some((l) => new RegExp(`^${prefixOf(t).replace(/\./g, '\\.')} +\\| \\S`).test(l)), `${prefixOf(t)} has its last line:\n${r.stdout}`);
  });

  test('unknown service or task, bad --tail: exit non-zero with one line', async () => {
    const r = await m('service', 'logs', 'nosuch');
    assert.equal(r.code, 3);
    assert.equal(r.stderr, 'netctl: no such service or task: nosuch (see: netctl service ls)\n');
    for (const bad of ['-1', 'NaN', '2.5']) {
      const b = await m('service', 'logs', `--tail=${bad}`, 'talk');
      assert.equal(b.code, 2, `--tail=${bad}: ${b.stderr}`);
      assert.equal(b.stderr, `netctl: --tail must be a whole number of lines (0 or more) or "all", got "${bad}"\n`);
    }
  });

  test('--stop-signal and --stop-grace-period reach the container (issue 12 item 2)', async () => {
    // PID 1 in a container ignores a signal it has no handler for: `stopper` exits only on SIGUSR1 (its
    // service's stop signal), `ignorer` on nothing, so it lasts exactly its 8 s grace (the default is 5 s).
    ok(await m('service', 'create', '--name', 'stopper', '--network', 'app', '--stop-signal', 'SIGUSR1', '--stop-grace-period', '60s', '--timeout', '120s',
      IMAGES.busybox, 'sh', '-c', 'trap "exit 0" USR1; while :; do sleep 0.2; done'), 'create stopper');
    ok(await m('service', 'create', '--name', 'ignorer', '--network', 'app', '--stop-signal', 'SIGUSR2', '--stop-grace-period', '8s', '--timeout', '120s',
      IMAGES.busybox, 'sh', '-c', 'while :; do sleep 0.2; done'), 'create ignorer');
    const bad = await m('service', 'create', '--name', 'nosig', '--stop-signal', 'SIGFOO', IMAGES.busybox);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown stop signal "SIGFOO"/);
    const gone = async (service: string): Promise<number> => {
      const [t] = await current(service);
      const name = L.containers().find((n) => n.endsWith(`c-${t!.id.slice(0, 12)}`));
      assert.ok(name, `${service}'s container: ${L.containers().join(' ')}`);
      const sig = spawnSync('docker', ['inspect', '-f', '{{.Config.StopSignal}}', name], { encoding: 'utf8' }).stdout.trim();
      assert.equal(sig, service === 'stopper' ? 'SIGUSR1' : 'SIGUSR2', `${name} StopSignal`);
      const t0 = Date.now();
      ok(await m('service', 'rm', service), `rm ${service}`);
      await waitFor(`${name} gone`, () => !L.containers().includes(name), 60_000, 100);
      return Date.now() - t0;
    };
    const [fast, slow] = [await gone('stopper'), await gone('ignorer')];
    console.log(`# stop: SIGUSR1-handling task gone ${fast} ms after service rm (grace 60 s); signal-ignoring task ${slow} ms (grace 8 s)`);
    assert.ok(fast < 20_000, `the stop signal reached it: gone in ${fast} ms, not after its 60 s grace`);
    assert.ok(slow >= 8000, `the service's 8 s grace was given (not the agent's 5 s): ${slow} ms`);
  });

  test('teardown: removing the services leaves no container of this lab', async () => {
    for (const s of ['talk', 'pt']) ok(await m('service', 'rm', s), `rm ${s}`);
    await waitFor('no container left', () => L.containers().length === 0, 60_000, 500);
  });
});
