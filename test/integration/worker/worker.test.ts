/**
 * The worker end to end in a 3-node lab (real agents, kernel objects, processes):
 * assignments → whoami tasks on three nodes reach each other over the overlay; a task of
 * another network (same subnet, other VNI) cannot; `netctl exec`, `task ls`, `debug fdb`
 * (drift after a hand-deleted FDB entry, repaired by reconcile); SIGKILL + restart of an
 * agent with continuous ping and HTTP checks; removing a network's tasks removes its
 * namespaces; bad assignments → 400 with a stable code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { realExec } from '../../../src/adapters/exec.js';
import type { AssignmentInput } from '../../../src/core/assignments.js';
import { MeshError } from '../../../src/core/errors.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import type { LabState } from '../../../src/lab/lab.js';
import type { TaskView } from '../../../src/agent/worker/worker.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';
import { killAgent, nodeOf, restartAgentsInRootMounts, startAgent } from './agents.js';

const LAB = 'itw1';
const CLI = join(dirname(fileURLToPath(import.meta.url)), 'netctl-worker.js');
const APP = { id: 'appnet0001', name: 'app', vni: 4101, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };
/** Same subnet, other VNI: must stay isolated from `app`. */
const OTHER = { id: 'othnet0001', name: 'other', vni: 4102, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };

function whoami(id: string, name: string, net: typeof APP, ip: string): AssignmentInput {
  return {
    task: { id, name, serviceId: `svc${net.name}`, serviceName: name.split('.')[0]!, image: 'whoami' },
    desiredState: 'running',
    attachments: [{ network: net, ip, prefix: 24, mac: macFromIp(ip), vip: null }],
    ports: [{ proto: 'tcp', target: 80 }],
  };
}

const PLAN: Record<string, AssignmentInput[]> = {
  n1: [whoami('web1aaaaaaaa', 'web.1', APP, '10.30.0.11'), whoami('oth1aaaaaaaa', 'oth.1', OTHER, '10.30.0.21')],
  n2: [whoami('web2aaaaaaaa', 'web.2', APP, '10.30.0.12')],
  n3: [whoami('web3aaaaaaaa', 'web.3', APP, '10.30.0.13')],
};

let lab: LabState;
const t0 = Date.now();
const ms = (): string => `${Date.now() - t0} ms`;

function cli(node: string, args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, '--lab', LAB, '--node', node, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

async function tasks(node: string): Promise<TaskView[]> {
  return agentClient(lab, node).call<TaskView[]>('GET', '/v1/tasks');
}

async function nsOf(node: string, taskName: string): Promise<string> {
  const t = (await tasks(node)).find((x) => x.name === taskName);
  assert.ok(t?.netns, `task ${taskName} on ${node} has a namespace`);
  return t.netns;
}

async function inNs(ns: string, argv: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string }> {
  const r = await realExec.run(argv[0]!, argv.slice(1), { netns: ns, timeoutMs });
  return { code: r.code, stdout: r.stdout };
}

interface Status {
  drift: number;
  fdb: Array<{ ip: string | null; mac: string; fdb: string; neigh: string; have: string | null }>;
  sandboxes: Array<{ sandbox: string; state: string }>;
}

after(async () => {
  if (!process.env.WORKER_KEEP_LAB) await destroyLab(LAB);
});

describe('worker: assignments → tasks on the overlay (3-node lab)', { timeout: 240_000 }, () => {
  before(async () => {
    lab = await createLab({ name: LAB, nodes: 3 });
    await restartAgentsInRootMounts(lab);
  });

  test('bad assignments → 400 MESHD_BAD_ARGUMENT, nothing applied', async () => {
    const c = agentClient(lab, 'n1');
    const cases: unknown[] = [
      { nope: 1 },
      [{ task: { id: 'x' } }],
      [whoami('dupaaaaaaaaa', 'a.1', APP, '10.30.0.50'), whoami('dupaaaaaaaaa', 'a.2', APP, '10.30.0.51')],
      [whoami('ipaaaaaaaaa1', 'a.1', APP, '10.30.0.50'), whoami('ipaaaaaaaaa2', 'a.2', APP, '10.30.0.50')],
      [whoami('outaaaaaaaaa', 'a.1', APP, '10.31.0.50')],
      [whoami('gwaaaaaaaaaa', 'a.1', APP, '10.30.0.1')],
      [whoami('vniaaaaaaaa1', 'a.1', APP, '10.30.0.50'), whoami('vniaaaaaaaa2', 'b.1', { ...OTHER, vni: APP.vni }, '10.30.0.60')],
    ];
    for (const body of cases) {
      await assert.rejects(c.call('PUT', '/v1/assignments', body), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && e.status === 400, JSON.stringify(body).slice(0, 80));
    }
    assert.deepEqual(await c.call('GET', '/v1/assignments'), []);
    console.log(`# bad input checked (${cases.length} cases) at ${ms()}`);
  });

  test('whoami tasks on three nodes reach each other; another network cannot', async () => {
    const start = Date.now();
    for (const n of ['n1', 'n2', 'n3']) await agentClient(lab, n).call('PUT', '/v1/assignments', { assignments: PLAN[n] });
    for (const n of ['n1', 'n2', 'n3']) {
      await waitFor(`tasks running on ${n}`, async () => {
        const ts = await tasks(n);
        return ts.length === PLAN[n]!.length && ts.every((t) => t.state === 'running');
      }, 30_000);
    }
    console.log(`# all tasks running ${Date.now() - start} ms after PUT`);
    const ns1 = await nsOf('n1', 'web.1');
    const { ms: reach } = await waitFor('web.1 → web.2/web.3 ping', async () => {
      const a = await inNs(ns1, ['ping', '-c1', '-W1', '10.30.0.12']);
      const b = await inNs(ns1, ['ping', '-c1', '-W1', '10.30.0.13']);
      return a.code === 0 && b.code === 0;
    }, 20_000, 200);
    console.log(`# cross-node ping ok ${reach} ms after all running`);
    const ns2 = await nsOf('n2', 'web.2');
    assert.equal((await inNs(ns2, ['ping', '-c1', '-W1', '10.30.0.11'])).code, 0);
    assert.equal((await inNs(ns2, ['ping', '-c1', '-W1', '10.30.0.13'])).code, 0);
    const h = await inNs(ns2, ['curl', '-s', '-m', '3', 'http://10.30.0.13/']);
    assert.match(h.stdout, /task: web\.3/);
    assert.match(h.stdout, /node: n3/);
    const h1 = await inNs(ns2, ['curl', '-s', '-m', '3', 'http://10.30.0.11/']);
    assert.match(h1.stdout, /task: web\.1/);
    // Other network, same subnet, other VNI: nothing reaches app's tasks.
    const nsO = await nsOf('n1', 'oth.1');
    assert.notEqual((await inNs(nsO, ['ping', '-c2', '-W1', '10.30.0.12'])).code, 0, 'other network must not reach web.2');
    assert.notEqual((await inNs(nsO, ['ping', '-c2', '-W1', '10.30.0.11'])).code, 0, 'other network must not reach web.1 (same node)');
    assert.notEqual((await inNs(nsO, ['curl', '-s', '-m', '2', 'http://10.30.0.13/'])).code, 0);
  });

  test('netctl exec and task ls', async () => {
    const r = cli('n2', ['exec', 'web.2', '--', 'curl', '-s', '-m', '3', 'http://10.30.0.11/']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /task: web\.1/);
    const byId = cli('n2', ['exec', 'web2aaaaaaaa', '--', 'ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.match(byId.stdout, /10\.30\.0\.12\/24/);
    const fail = cli('n2', ['exec', 'web.2', '--', 'sh', '-c', 'exit 7']);
    assert.equal(fail.code, 7);
    const missing = cli('n2', ['exec', 'nosuchtask', '--', 'true']);
    assert.equal(missing.code, 3);
    assert.match(missing.stderr, /no task nosuchtask/);
    const ls = JSON.parse(cli('n1', ['task', 'ls', '--format', 'json']).stdout) as TaskView[];
    assert.deepEqual(ls.map((t) => [t.name, t.state, t.ips]), [['oth.1', 'running', { other: '10.30.0.21' }], ['web.1', 'running', { app: '10.30.0.11' }]]);
    assert.match(cli('n1', ['task', 'ls']).stdout, /web\.1\s+web\s+netns\s+running\s+app=10\.30\.0\.11/);
  });

  test('debug fdb: no drift; a hand-deleted FDB entry shows as drift and is repaired', async () => {
    const st = await waitFor('n1 converged', async () => {
      const s = JSON.parse(cli('n1', ['debug', 'fdb', '--network', 'app', '--format', 'json']).stdout) as Status;
      return s.drift === 0 && s.fdb.length === 2 ? s : undefined;
    }, 10_000);
    assert.ok(st.value.fdb.every((r) => r.fdb === 'ok' && r.neigh === 'ok'));
    assert.deepEqual(st.value.fdb.map((r) => r.ip), ['10.30.0.12', '10.30.0.13']);
    const sb = JSON.parse(cli('n1', ['debug', 'sandbox', '--format', 'json']).stdout) as Status;
    assert.deepEqual(sb.sandboxes.map((s) => [s.sandbox, s.state]), [[`mlab-${LAB}-n1-ov-appnet0001`, 'ok'], [`mlab-${LAB}-n1-ov-othnet0001`, 'ok']]);
    // Delete n2's task entry by hand.
    const sandbox = `mlab-${LAB}-n1-ov-appnet0001`;
    await realExec.check('bridge', ['-n', sandbox, 'fdb', 'del', macFromIp('10.30.0.12'), 'dev', `vx-${APP.vni}`, 'dst', '10.99.1.2']);
    const drift = JSON.parse(cli('n1', ['debug', 'fdb', '--format', 'json']).stdout) as Status;
    assert.ok(drift.drift > 0);
    assert.equal(drift.fdb.find((r) => r.ip === '10.30.0.12')?.fdb, 'missing');
    assert.match(cli('n1', ['debug', 'fdb']).stdout, /10\.30\.0\.12.*MISSING/);
    const t = Date.now();
    await agentClient(lab, 'n1').call('POST', '/v1/overlay/reconcile');
    const fixed = JSON.parse(cli('n1', ['debug', 'fdb', '--format', 'json']).stdout) as Status;
    assert.equal(fixed.drift, 0);
    console.log(`# triggered reconcile repaired the FDB in ${Date.now() - t} ms`);
    assert.equal((await inNs(await nsOf('n1', 'web.1'), ['ping', '-c1', '-W1', '10.30.0.12'])).code, 0);
  });

  test('SIGKILL + restart of n2: tasks keep connectivity, state repaired equals desired', async () => {
    const ns1 = await nsOf('n1', 'web.1');
    const ns3 = await nsOf('n3', 'web.3');
    const before2 = (await tasks('n2')).find((t) => t.name === 'web.2')!;
    // Continuous checks: ping every 100 ms n1→n2 and HTTP every 200 ms n3→n2, for ~12 s.
    const ping = spawn('ip', ['netns', 'exec', ns1, 'ping', '-i', '0.1', '-c', '120', '-W', '1', '10.30.0.12'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let pingOut = '';
    ping.stdout.setEncoding('utf8').on('data', (d: string) => (pingOut += d));
    const http = spawn('ip', ['netns', 'exec', ns3, 'sh', '-c',
      'ok=0; bad=0; for i in $(seq 1 60); do if curl -s -m 1 http://10.30.0.12/ | grep -q "task: web.2"; then ok=$((ok+1)); else bad=$((bad+1)); fi; sleep 0.2; done; echo "ok=$ok bad=$bad"'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let httpOut = '';
    http.stdout.setEncoding('utf8').on('data', (d: string) => (httpOut += d));
    const closed = [ping, http].map((c) => new Promise<void>((r) => c.once('close', () => r())));
    try {
      await new Promise((r) => setTimeout(r, 1000));
      await killAgent(nodeOf(lab, 'n2'));
      await new Promise((r) => setTimeout(r, 1500));
      const t = Date.now();
      await startAgent(nodeOf(lab, 'n2'));
      const ready = Date.now() - t;
      const { ms: adoptMs } = await waitFor('n2 re-adopted web.2', async () => {
        const ts = await tasks('n2');
        return ts.length === 1 && ts[0]!.state === 'running' && ts[0]!.adopted;
      }, 20_000);
      const conv = await waitFor('n2 overlay converged', async () => {
        const s = await agentClient(lab, 'n2').call<Status & { active: boolean }>('GET', '/v1/overlay/status');
        return s.active && s.drift === 0 && s.fdb.length === 2 && s.fdb.every((r) => r.fdb === 'ok') ? s : undefined;
      }, 20_000);
      console.log(`# n2 restart: ready ${ready} ms, adopted after ${adoptMs} ms, overlay converged after ${conv.ms} ms`);
      const after2 = (await tasks('n2')).find((t) => t.name === 'web.2')!;
      assert.equal(after2.pid, before2.pid, 'same task process as before the kill');
    } finally {
      await Promise.all(closed);
    }
    const m = /(\d+) packets transmitted, (\d+) received/.exec(pingOut);
    console.log(`# during the restart: ping ${m?.[0]}, http ${httpOut.trim()}`);
    assert.ok(m, pingOut);
    assert.equal(m[1], m[2], `no ping lost: ${m[0]}`);
    assert.match(httpOut, /bad=0/);
    // n1 and n3 still see no drift either.
    for (const n of ['n1', 'n3']) {
      const s = await agentClient(lab, n).call<Status>('GET', '/v1/overlay/status');
      assert.equal(s.drift, 0, `${n} drift`);
    }
  });

  test('removing all tasks of a network removes its sandbox and task namespaces on that node', async () => {
    const t = Date.now();
    // A confirmed drain can end within one poll (every member acks in tens of ms), so polling
    // for the 'draining' state races; the drain counter says whether the task was drained.
    const drains = async () => {
      const text = await agentClient(lab, 'n1').text('/metrics');
      const m = /^meshd_drain_total\{outcome="(?:acked|timeout)"[^}]*\} (\d+)/gm;
      let sum = 0;
      for (const x of text.matchAll(m)) sum += Number(x[1]);
      return sum;
    };
    const drainsBefore = await drains();
    await agentClient(lab, 'n1').call('PUT', '/v1/assignments', { assignments: PLAN.n1!.filter((a) => a.task.name !== 'oth.1') });
    const seen: string[] = [];
    await waitFor('oth.1 gone', async () => {
      const ts = await tasks('n1');
      const o = ts.find((x) => x.name === 'oth.1');
      if (o) seen.push(o.state);
      return !o;
    }, 20_000, 100);
    const drained = (await drains()) - drainsBefore;
    assert.equal(drained, 1, `drained first: one drain ended (states seen: ${[...new Set(seen)].join(',')})`);
    await waitFor('other sandbox removed', async () => {
      const nss = (await realExec.check('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]);
      return !nss.includes(`mlab-${LAB}-n1-ov-othnet0001`) && !nss.includes(`mlab-${LAB}-n1-t-oth1aaaaaaaa`) && nss.includes(`mlab-${LAB}-n1-ov-appnet0001`);
    }, 10_000);
    console.log(`# network other removed from n1 in ${Date.now() - t} ms (confirmed drain included)`);
    // n3: remove everything → its app sandbox goes, and n1 drops the FDB entry for .13.
    await agentClient(lab, 'n3').call('PUT', '/v1/assignments', []);
    await waitFor('n3 empty', async () => {
      const nss = (await realExec.check('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0] ?? '');
      return (await tasks('n3')).length === 0 && !nss.some((n) => n.startsWith(`mlab-${LAB}-n3-`));
    }, 15_000);
    await waitFor('n1 dropped .13', async () => {
      const s = await agentClient(lab, 'n1').call<Status>('GET', '/v1/overlay/status?network=app');
      return s.drift === 0 && s.fdb.map((r) => r.ip).join() === '10.30.0.12';
    }, 10_000);
    assert.equal((await inNs(await nsOf('n1', 'web.1'), ['ping', '-c1', '-W1', '10.30.0.12'])).code, 0);
  });
});
