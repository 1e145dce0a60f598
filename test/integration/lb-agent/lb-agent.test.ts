/**
 * The agent's load balancer end to end in a 3-node lab (real agents, kernel, processes):
 * whoami tasks through the worker (`PUT /v1/assignments`), VIP balancing from a task on the
 * network, the routing mesh from the lab client to every node's underlay address, an agent
 * SIGKILL + restart (rules stay, damage repaired from the kernel state), scale 3 → 1 → 3 under a
 * steady request loop (no answer from a removed task after its drain started, no errors), scale
 * to 0 (VIP and published port refuse at once), and `netctl debug lb`.
 */
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { realExec } from '../../../src/adapters/exec.js';
import type { AssignmentInput } from '../../../src/core/assignments.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import type { LabState } from '../../../src/lab/lab.js';
import type { TaskView } from '../../../src/agent/worker/worker.js';
import type { LbStatusReply } from '../../../src/cli/lb-commands.js';
import { agentClient, createLab, destroyLab, diagnose, waitFor } from '../../helpers/lab.js';
import { netctl } from '../../helpers/cli.js';
import { APP, NODES, PROBE, VIP, task } from '../../vm/lb-mesh-fixture.js';

const LAB = 'itlb1';
// The lab workload (network app, its VIP, the task shape) is shared with the IPVS mesh test in the VM.
/** web task id → [node, app ip, ingress ip] */
const WEB: Record<string, [string, string, string]> = {
  web1aaaaaaaa: ['n1', '10.40.0.11', '10.255.0.11'],
  web2aaaaaaaa: ['n2', '10.40.0.12', '10.255.0.12'],
  web3aaaaaaaa: ['n3', '10.40.0.13', '10.255.0.13'],
  web4aaaaaaaa: ['n2', '10.40.0.14', '10.255.0.14'],
  web5aaaaaaaa: ['n3', '10.40.0.15', '10.255.0.15'],
};
const webTask = (id: string): AssignmentInput => task(id, `web.${id[3]}`, 'web', WEB[id]![1], true);
/** Service `loc`: one task on n2, published 8081 with policy local (client address preserved). */
const LOC: AssignmentInput = {
  task: { id: 'loc1aaaaaaaa', name: 'loc.1', serviceId: 'svcloc', serviceName: 'loc', image: 'whoami' },
  desiredState: 'running',
  attachments: [{ network: APP, ip: '10.40.0.31', prefix: 24, mac: macFromIp('10.40.0.31'), vip: '10.40.0.3' }],
  ports: [{ proto: 'tcp', target: 80, published: 8081, mode: 'ingress', policy: 'local' }],
};
let withLoc = false;

let lab: LabState;
const t0 = Date.now();
const ms = (): string => `${Date.now() - t0} ms`;

async function tasks(node: string): Promise<TaskView[]> {
  return agentClient(lab, node).call<TaskView[]>('GET', '/v1/tasks');
}

/** Assigns web tasks (ids) to their nodes; n1 always runs the probe; attaches them to ingress first. */
async function assign(webIds: string[]): Promise<void> {
  for (const n of NODES) {
    const mine = webIds.filter((id) => WEB[id]![0] === n);
    for (const id of mine) await agentClient(lab, n).call('PUT', `/v1/ingress/tasks/${id}`, { ip: WEB[id]![2] });
    const loc = withLoc && n === 'n2' ? [LOC] : [];
    if (loc.length) await agentClient(lab, n).call('PUT', '/v1/ingress/tasks/loc1aaaaaaaa', { ip: '10.255.0.31' });
    await agentClient(lab, n).call('PUT', '/v1/assignments', { assignments: [...(n === 'n1' ? [PROBE] : []), ...mine.map(webTask), ...loc] });
  }
}

async function allRunning(webIds: string[]): Promise<void> {
  for (const n of NODES) {
    const want = webIds.filter((id) => WEB[id]![0] === n).length + (n === 'n1' ? 1 : 0) + (withLoc && n === 'n2' ? 1 : 0);
    await waitFor(`tasks running on ${n}`, async () => {
      const ts = (await tasks(n)).filter((t) => t.desiredState === 'running');
      return ts.length === want && ts.every((t) => t.state === 'running');
    }, 30_000);
  }
}

function probeNs(): string {
  return `mlab-${LAB}-n1-t-probe1aaaaaa`;
}

/** n requests in one shell loop inside a namespace; returns the task names that answered (or `ERR<code>`). */
async function loopIn(ns: string, url: string, n: number): Promise<string[]> {
  const script = `for i in $(seq ${n}); do r=$(curl -s -m 2 ${url}) || r="ERR$?"; echo "$r" | head -1; done`;
  const r = await realExec.run('sh', ['-c', script], { netns: ns, timeoutMs: 120_000 });
  return r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^task: /, ''));
}

async function loopFromClient(url: string, n: number): Promise<string[]> {
  const script = `for i in $(seq ${n}); do r=$(curl -s -m 2 ${url}) || r="ERR$?"; echo "$r" | head -1; done`;
  const r = await netctl(['lab', 'client', '--name', LAB, '--', 'sh', '-c', script], { timeoutMs: 120_000 });
  return r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^task: /, ''));
}

const distinct = (xs: string[]): string[] => [...new Set(xs)].sort();

async function lbStatus(node: string, service?: string): Promise<LbStatusReply> {
  return agentClient(lab, node).call<LbStatusReply>('GET', `/v1/lb/status${service ? `?service=${service}` : ''}`);
}

async function noDrift(node: string): Promise<boolean> {
  const s = await lbStatus(node);
  return s.active && s.namespaces.length > 0 && s.namespaces.every((n) => n.drift.length === 0 && !n.error);
}

after(async () => {
  if (!process.env.LB_KEEP_LAB) await destroyLab(LAB);
});

describe('lb: VIPs and the routing mesh in a 3-node lab', { timeout: 300_000 }, () => {
  before(async () => {
    lab = await createLab({ name: LAB, nodes: 3 });
    for (const [i, n] of NODES.entries()) await agentClient(lab, n).call('PUT', '/v1/ingress', { ip: `10.255.255.${i + 1}` });
    const start = Date.now();
    await assign(['web1aaaaaaaa', 'web2aaaaaaaa', 'web3aaaaaaaa']);
    await allRunning(['web1aaaaaaaa', 'web2aaaaaaaa', 'web3aaaaaaaa']);
    console.log(`# 3 web tasks + probe running ${Date.now() - start} ms after PUT (${ms()})`);
  });

  test('VIP: 30 requests from a task on the network reach all 3 tasks on 3 nodes', async () => {
    const { ms: took } = await waitFor('VIP answers from all 3 tasks', async () => distinct(await loopIn(probeNs(), `http://${VIP}/`, 30)).join() === 'web.1,web.2,web.3', 30_000, 200);
    const answers = await loopIn(probeNs(), `http://${VIP}/`, 30);
    assert.deepEqual(distinct(answers), ['web.1', 'web.2', 'web.3'], answers.join(' '));
    console.log(`# VIP balanced over 3 tasks (${took} ms to converge): ${['web.1', 'web.2', 'web.3'].map((t) => `${t}=${answers.filter((a) => a === t).length}`).join(' ')}`);
  });

  test('routing mesh: 30 requests to EACH node\'s underlay address from the lab client reach all 3 tasks', async () => {
    for (const n of lab.nodes) {
      const url = `http://${n.underlay}:8080/`;
      let seen: string[] = [];
      const { ms: took } = await waitFor(`ingress on ${n.name}`, async () => distinct(seen = await loopFromClient(url, 12)).join() === 'web.1,web.2,web.3', 30_000, 300)
        .catch(async (e: Error) => {
          throw new Error(`${e.message}; last answers: ${seen.join(' ')}\n${await diagnose(lab, n.name)}`);
        });
      const answers = await loopFromClient(url, 30);
      assert.deepEqual(distinct(answers), ['web.1', 'web.2', 'web.3'], `${n.name}: ${answers.join(' ')}`);
      console.log(`# ingress via ${n.name} (${n.underlay}) balanced over 3 tasks, converged in ${took} ms`);
    }
    for (const n of NODES) assert.ok(await noDrift(n), `${n}: desired == kernel`);
  });

  test('policy local: only the node\'s own task answers, and it sees the client\'s real address', async () => {
    withLoc = true;
    await assign(['web1aaaaaaaa', 'web2aaaaaaaa', 'web3aaaaaaaa']);
    await allRunning(['web1aaaaaaaa', 'web2aaaaaaaa', 'web3aaaaaaaa']);
    const [, n2, n3] = lab.nodes;
    const { ms: took } = await waitFor('loc answers on n2:8081', async () => (await loopFromClient(`http://${n2!.underlay}:8081/`, 1))[0] === 'loc.1', 30_000, 300);
    const answers = await loopFromClient(`http://${n2!.underlay}:8081/`, 10);
    assert.deepEqual(distinct(answers), ['loc.1'], answers.join(' '));
    const ct = await realExec.run('conntrack', ['-L', '-p', 'tcp', '--dport', '80'], { netns: `mlab-${LAB}-n2-t-loc1aaaaaaaa` });
    assert.match(ct.stdout, new RegExp(`src=${lab.client.underlay.replace(/\./g, '\\.')} dst=10\\.255\\.0\\.31 `), `task sees the client's address:\n${ct.stdout}`);
    // n3 has no task of `loc`: policy local rejects there (no cross-node hop).
    const far = await loopFromClient(`http://${n3!.underlay}:8081/`, 2);
    assert.deepEqual(far, ['ERR7', 'ERR7']);
    console.log(`# policy local: answered on n2 after ${took} ms, client address ${lab.client.underlay} seen by the task; n3 refuses`);
  });

  test('ingress survives an agent restart: rules stay meanwhile, damage repaired from kernel state after', async () => {
    const n2 = lab.nodes.find((x) => x.name === 'n2')!;
    const url = `http://${n2.underlay}:8080/`;
    assert.equal((await netctl(['lab', 'kill', 'n2', '--name', LAB])).code, 0);
    await new Promise((r) => setTimeout(r, 500));
    const during = await loopFromClient(url, 15);
    assert.ok(during.every((a) => !a.startsWith('ERR')), `while n2's agent is down: ${during.join(' ')}`);
    // Damage while the agent is away: the ingress sandbox's LB table and the host DNAT table.
    await realExec.check('nft', ['delete', 'table', 'ip', 'meshd-lb'], { netns: `mlab-${LAB}-n2-ingress` });
    await realExec.check('nft', ['delete', 'table', 'ip', 'meshd-ingress'], { netns: n2.netns });
    const broken = await loopFromClient(url, 3);
    assert.ok(broken.every((a) => a.startsWith('ERR')), `damaged: ${broken.join(' ')}`);
    const t = Date.now();
    const st = await netctl(['lab', 'start', 'n2', '--name', LAB], { timeoutMs: 60_000 });
    assert.equal(st.code, 0, st.stderr);
    const { ms: healed } = await waitFor('n2 ingress repaired', async () => distinct(await loopFromClient(url, 12)).join() === 'web.1,web.2,web.3', 40_000, 300);
    console.log(`# n2 restarted; ingress repaired ${Date.now() - t} ms after start (${healed} ms after ready)`);
    await waitFor('n2 desired == kernel', () => noDrift('n2'), 20_000);
  });

  test('scale 3 → 1 → 3 under steady VIP and routing-mesh loops: no answer from a removed task after its drain, no errors; ingress on a node without tasks', async () => {
    const log: Array<{ t: number; a: string }> = [];
    let stop = false;
    // Routing-mesh loop from the lab client to n3 (which loses its only task), timestamped in the shell.
    const n3url = `http://${lab.nodes.find((x) => x.name === 'n3')!.underlay}:8080/`;
    const mesh = spawn('ip', ['netns', 'exec', lab.client.netns, 'sh', '-c',
      `while :; do t=$(date +%s%3N); r=$(curl -s -m 2 ${n3url}) || r="ERR$?"; echo "$t $(echo "$r" | head -1)"; sleep 0.02; done`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let meshOut = '';
    mesh.stdout.on('data', (b: Buffer) => (meshOut += b.toString()));
    const loop = (async () => {
      while (!stop) {
        // t = when the request started: a connection opened before a drain was confirmed may finish after it.
        const t = Date.now();
        const r = await realExec.run('curl', ['-s', '-m', '2', `http://${VIP}/`], { netns: probeNs(), timeoutMs: 5000 });
        log.push({ t, a: r.code === 0 ? (r.stdout.split('\n')[0] ?? '').replace(/^task: /, '') : `ERR${r.code}` });
      }
    })();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const down = Date.now();
      await assign(['web1aaaaaaaa']);
      await waitFor('web.2 and web.3 stopped', async () => {
        const ts = [...(await tasks('n2')), ...(await tasks('n3'))].filter((x) => x.name === 'web.2' || x.name === 'web.3');
        return ts.every((x) => x.state === 'stopped');
      }, 30_000);
      const stoppedAt = Date.now();
      // Once a removed task's drain is confirmed (every member acked that its LB and DNS dropped
      // it), no new connection may land on it: the cutoff is the confirmation time on its node.
      const confirmed = Math.max(...await Promise.all([['n2', 'web2aaaaaaaa'], ['n3', 'web3aaaaaaaa']].map(async ([node, id]) => {
        const w = await agentClient(lab, node!).call<{ recent: Array<{ taskId: string; outcome: string; endedAt: number }> }>('GET', '/v1/drain/waits');
        const r = w.recent.filter((x) => x.taskId === id).pop();
        assert.ok(r, `${node} has a drain result for ${id}`);
        assert.equal(r.outcome, 'acked', `${id}: drain confirmed by every member`);
        return r.endedAt;
      })));
      const cutoff = confirmed;
      console.log(`# scaled to 1: drains confirmed ${confirmed - down} ms after the PUT`);
      await new Promise((r) => setTimeout(r, 1500));
      const late = log.filter((x) => x.t > cutoff && (x.a === 'web.2' || x.a === 'web.3'));
      assert.deepEqual(late, [], 'answers from removed tasks to requests started after their drain was confirmed');
      console.log(`# scaled to 1: removed tasks stopped ${stoppedAt - down} ms after the PUT; last answer from them ${Math.max(...log.filter((x) => x.a === 'web.2' || x.a === 'web.3').map((x) => x.t)) - down} ms after it`);
      // n3 has no task left: its routing mesh still answers (from web.1).
      const n3 = lab.nodes.find((x) => x.name === 'n3')!;
      const via3 = await loopFromClient(`http://${n3.underlay}:8080/`, 10);
      assert.deepEqual(distinct(via3), ['web.1'], via3.join(' '));
      const up = Date.now();
      await assign(['web1aaaaaaaa', 'web4aaaaaaaa', 'web5aaaaaaaa']);
      await allRunning(['web1aaaaaaaa', 'web4aaaaaaaa', 'web5aaaaaaaa']);
      await waitFor('VIP answers from web.1, web.4, web.5', () => {
        const recent = log.filter((x) => x.t > up).slice(-30).map((x) => x.a);
        return ['web.1', 'web.4', 'web.5'].every((w) => recent.includes(w));
      }, 30_000, 200);
      console.log(`# scaled back to 3: new tasks answer through the VIP ${Date.now() - up} ms after the PUT`);
      const { ms: meshUp } = await waitFor('mesh loop reaches web.1, web.4, web.5', () => {
        const recent = meshOut.split('\n').filter(Boolean).slice(-40).map((l) => l.slice(l.indexOf(' ') + 1).replace(/^task: /, ''));
        return ['web.1', 'web.4', 'web.5'].every((w) => recent.includes(w));
      }, 30_000, 200);
      console.log(`# scaled back to 3: the mesh loop via n3 reaches all new tasks ${meshUp} ms after the VIP did`);
      const meshLog = meshOut.split('\n').filter(Boolean).map((l) => ({ t: Number(l.split(' ')[0]), a: l.slice(l.indexOf(' ') + 1).replace(/^task: /, '') }));
      const meshLate = meshLog.filter((x) => x.t > cutoff && (x.a === 'web.2' || x.a === 'web.3'));
      const meshErr = meshLog.filter((x) => x.a.startsWith('ERR'));
      console.log(`# mesh loop via n3: ${meshLog.length} requests, ${meshErr.length} errors, last answer from a removed task ${Math.max(...meshLog.filter((x) => x.a === 'web.2' || x.a === 'web.3').map((x) => x.t)) - down} ms after the PUT`);
      assert.deepEqual(meshLate, [], 'mesh: answers from removed tasks after their drain');
      assert.deepEqual(meshErr, [], 'mesh: no errors');
    } finally {
      stop = true;
      if (mesh.pid) mesh.kill('SIGTERM');
      await loop;
    }
    const errors = log.filter((x) => x.a.startsWith('ERR'));
    console.log(`# steady VIP loop: ${log.length} requests, ${errors.length} errors`);
    assert.deepEqual(errors, [], 'no errors in the steady loop');
    for (const n of lab.nodes) {
      const answers = await loopFromClient(`http://${n.underlay}:8080/`, 30);
      assert.deepEqual(distinct(answers), ['web.1', 'web.4', 'web.5'], `${n.name}: ${answers.join(' ')}`);
    }
  });

  test('netctl debug lb shows desired vs kernel tied to services and tasks', async () => {
    const j = await netctl(['--lab', LAB, '--node', 'n1', 'debug', 'lb', '--service', 'web', '--format', 'json']);
    assert.equal(j.code, 0, j.stderr);
    const s = JSON.parse(j.stdout) as LbStatusReply;
    assert.equal(s.backend, 'nftables');
    const probe = s.namespaces.find((n) => n.task === 'probe1aaaaaa');
    assert.ok(probe, 'probe namespace listed');
    const f = probe.frontends.find((x) => x.key === `vip ${VIP} tcp 80`);
    assert.deepEqual(f?.backends.map((b) => b.task).sort(), ['web1aaaaaaaa', 'web4aaaaaaaa', 'web5aaaaaaaa']);
    assert.deepEqual(f?.kernel?.sort(), ['10.40.0.11:80', '10.40.0.14:80', '10.40.0.15:80']);
    const ing = s.namespaces.find((n) => n.kind === 'ingress');
    assert.deepEqual(ing?.frontends[0]?.kernel?.sort(), ['10.255.0.11:80', '10.255.0.14:80', '10.255.0.15:80']);
    assert.ok(s.namespaces.every((n) => n.drift.length === 0));
    const t = await netctl(['--lab', LAB, '--node', 'n1', 'debug', 'lb']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /vip 10\.40\.0\.2 tcp 80 +web /);
    assert.match(t.stdout, /ingress tcp 8080 +web /);
    const nf = await netctl(['--lab', LAB, '--node', 'n1', 'debug', 'lb', '--service', 'nope']);
    assert.notEqual(nf.code, 0);
  });

  test('scaled to 0: the VIP and the published port refuse at once', async () => {
    await assign([]);
    await waitFor('web tasks gone', async () => {
      for (const n of NODES) if ((await tasks(n)).some((x) => x.service === 'web' && x.state !== 'stopped')) return false;
      return true;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    const a = Date.now();
    const r = await realExec.run('curl', ['-s', '-m', '3', `http://${VIP}/`], { netns: probeNs(), timeoutMs: 5000 });
    const vipMs = Date.now() - a;
    assert.equal(r.code, 7, `curl exit ${r.code} (7 = connection refused)`);
    assert.ok(vipMs < 1000, `refused in ${vipMs} ms`);
    // Timed inside the client namespace (curl's own connect time), not counting netctl's start.
    const c = await netctl(['lab', 'client', '--name', LAB, '--', 'curl', '-s', '-m', '3', '-w', '%{time_total}', `http://${lab.nodes[0]!.underlay}:8080/`]);
    const ingMs = Math.round(Number(c.stdout.trim()) * 1000);
    assert.equal(c.code, 7, `curl exit ${c.code}`);
    assert.ok(ingMs < 1000, `published port refused in ${ingMs} ms`);
    console.log(`# empty service: VIP refused in ${vipMs} ms, published port refused in ${ingMs} ms`);
  });

  test('the periodic drift check never resynced on its own: every change it saw was applied, none was drift', async () => {
    // Since the check compares the kernel with what was last applied (not with a plan still being
    // applied), a full resync from it means real drift; nothing in this file changes the kernel by hand.
    for (const n of lab.nodes) {
      const s = (await lbStatus(n.name)) as unknown as { stats: { driftResyncs: number; fullResyncs: number; lastDrift: string[] } };
      process.stdout.write(`# ${n.name}: driftResyncs=${s.stats.driftResyncs} fullResyncs=${s.stats.fullResyncs}\n`);
      assert.equal(s.stats.driftResyncs, 0, `${n.name} resynced on drift: ${s.stats.lastDrift.join(' ')}`);
    }
  });
});
