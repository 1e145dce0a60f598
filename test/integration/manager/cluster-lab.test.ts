/**
 * The cluster experience end to end on a 3-node lab, driving the real netctl against the
 * agents' sockets: init on n1, join n2/n3 with the worker token read from a file, service
 * placement (2/2/2), scale, agent kill -9 → rescheduling with history, drain, a global
 * service following a node coming back, bad API input through the agent proxy, network
 * errors. Tasks really run (the worker starts them in namespaces).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netctl } from '../../helpers/cli.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'itmclu';
const tmp = mkdtempSync(join(tmpdir(), 'meshd-itm-'));
let lab: LabState;
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args]);

interface TaskJ { id: string; name: string; node: string | null; desiredState: string; state: string; addresses: Record<string, string> }

async function ps(svc: string): Promise<TaskJ[]> {
  const r = await on('n1', 'service', 'ps', svc, '--format', 'json');
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as TaskJ[];
}
const running = (ts: TaskJ[]) => ts.filter((t) => t.desiredState === 'running' && t.state === 'running');
function perNode(ts: TaskJ[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of ts) out[t.node ?? '-'] = (out[t.node ?? '-'] ?? 0) + 1;
  return out;
}

/** A raw request to an agent socket (bodies the API client would never send). */
function raw(node: string, method: string, path: string, body: string): Promise<{ status: number; json: { code?: string } }> {
  const socketPath = lab.nodes.find((n) => n.name === node)!.socket;
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let s = '';
      res.setEncoding('utf8').on('data', (d: string) => (s += d)).on('end', () => resolve({ status: res.statusCode ?? 0, json: s ? JSON.parse(s) as { code?: string } : {} }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  lab = await createLab({ name: LAB, nodes: 3 });
});
after(async () => {
  await destroyLab(LAB);
  rmSync(tmp, { recursive: true, force: true });
});

describe('cluster on a 3-node lab', { timeout: 360_000 }, () => {
  test('init on n1, join n2 and n3 with the worker token from a file', async () => {
    const init = await on('n1', 'cluster', 'init');
    assert.equal(init.code, 0, init.stderr);
    const again = await on('n1', 'cluster', 'init');
    assert.equal(again.code, 5, 'a second init is a conflict');
    const tok = await on('n1', 'cluster', 'join-token', 'worker', '-q');
    assert.equal(tok.code, 0, tok.stderr);
    const file = join(tmp, 'worker.token');
    writeFileSync(file, tok.stdout, { mode: 0o600 });
    for (const n of ['n2', 'n3']) {
      const j = await on(n, 'cluster', 'join', '--token-file', file, '10.99.1.1:2377');
      assert.equal(j.code, 0, j.stderr);
    }
    const bad = await netctl(['--lab', LAB, '--node', 'n3', 'cluster', 'join', '10.99.1.1:2377'], { input: 'SWMTKN-garbage\n' });
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stderr.trim().split('\n').length, 1, bad.stderr);
    const ls = await on('n1', 'node', 'ls', '--format', 'json');
    const nodes = JSON.parse(ls.stdout) as Array<{ hostname: string; state: string; role: string }>;
    assert.deepEqual(nodes.map((n) => [n.hostname, n.state]).sort(), [['n1', 'ready'], ['n2', 'ready'], ['n3', 'ready']]);
    const worker = await on('n2', 'service', 'ls');
    assert.equal(worker.code, 4, 'a worker may not list services (403 through the proxy)');
  });

  test('service create --replicas 6 whoami spreads 2/2/2 and converges', async () => {
    const r = await on('n1', 'service', 'create', '--name', 'web', '--replicas', '6', '--timeout', '60s', 'whoami');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /verify: Service converged/);
    const ts = running(await ps('web'));
    assert.equal(ts.length, 6);
    assert.deepEqual(perNode(ts), { n1: 2, n2: 2, n3: 2 });
    for (const t of ts) assert.match(t.addresses.ingress!, /^10\.255\.\d+\.\d+$/);
    const ls = await on('n1', 'service', 'ls');
    assert.match(ls.stdout, /web\s+replicated\s+6\/6\s+whoami/);
  });

  test('scale web=9 adds 3 tasks (3/3/3)', async () => {
    const r = await on('n1', 'service', 'scale', 'web=9', '--timeout', '60s');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(perNode(running(await ps('web'))), { n1: 3, n2: 3, n3: 3 });
  });

  test('kill -9 of n3\'s agent: its tasks run elsewhere, service ps keeps the history', async () => {
    const k = await netctl(['lab', 'kill', 'n3', '--name', LAB]);
    assert.equal(k.code, 0, k.stderr);
    const { ms } = await waitFor('tasks moved off n3', async () => {
      const ts = await ps('web');
      const r = running(ts);
      return r.length === 9 && !r.some((t) => t.node === 'n3') && ts;
    }, 30_000, 250);
    const ts = await ps('web');
    assert.equal(ts.filter((t) => t.node === 'n3' && t.desiredState === 'shutdown').length, 3, 'history shows the lost tasks');
    const nodes = JSON.parse((await on('n1', 'node', 'ls', '--format', 'json')).stdout) as Array<{ hostname: string; state: string }>;
    assert.equal(nodes.find((n) => n.hostname === 'n3')!.state, 'down');
    const table = await on('n1', 'service', 'ps', 'web');
    assert.match(table.stdout, /\\_ web\.\d+/);
    process.stdout.write(`# rescheduled in ${ms} ms after kill -9\n`);
  });

  test('node update --availability drain empties a node', async () => {
    const r = await on('n1', 'node', 'update', '--availability', 'drain', 'n2');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('n2 drained', async () => {
      const t = running(await ps('web'));
      return t.length === 9 && !t.some((x) => x.node === 'n2');
    }, 30_000, 250);
    assert.equal((await on('n1', 'node', 'update', '--availability', 'active', 'n2')).code, 0);
  });

  test('a global service runs one task per ready node and follows a node coming back', async () => {
    const r = await on('n1', 'service', 'create', '--name', 'agent', '--mode', 'global', '--detach', 'whoami');
    assert.equal(r.code, 0, r.stderr);
    await waitFor('agent on n1,n2', async () => {
      const t = running(await ps('agent'));
      const p = perNode(t);
      return t.length === 2 && p.n1 === 1 && p.n2 === 1;
    }, 30_000, 250);
    const s = await netctl(['lab', 'start', 'n3', '--name', LAB]);
    assert.equal(s.code, 0, s.stderr);
    await waitFor('agent on n3 too', async () => {
      const t = running(await ps('agent'));
      return t.length === 3 && perNode(t).n3 === 1;
    }, 40_000, 250);
  });

  test('bad input through the agent proxy → 4xx with stable codes, never 5xx', async () => {
    const svc = (o: Record<string, unknown>) => JSON.stringify({ name: 'bad', image: 'whoami', ...o });
    const cases: Array<[string, string]> = [
      ['x'.repeat((1 << 20) + 10), 'MESHD_BODY_TOO_LARGE'],
      ['{"name":', 'MESHD_BAD_JSON'],
      ['{"name":"x","image":"y","__proto__":{"polluted":1}}', 'MESHD_BAD_ARGUMENT'],
      [svc({ mode: { replicated: { replicas: null } } }), 'MESHD_BAD_ARGUMENT'],
      [svc({ mode: { replicated: { replicas: -1 } } }), 'MESHD_BAD_ARGUMENT'],
      [svc({ mode: { replicated: { replicas: 2 ** 53 } } }), 'MESHD_BAD_ARGUMENT'],
      [svc({ name: 'Bad_Name' }), 'MESHD_BAD_ARGUMENT'],
      [svc({ name: 'a'.repeat(64) }), 'MESHD_BAD_ARGUMENT'],
    ];
    for (const [body, code] of cases) {
      const r = await raw('n1', 'POST', '/v1/manager/services', body);
      assert.ok(r.status >= 400 && r.status < 500, `${body.slice(0, 60)} → ${r.status}`);
      assert.equal(r.json.code, code, body.slice(0, 60));
    }
    const cli = await on('n1', 'service', 'create', '--name', 'x', '--replicas', '-1', 'whoami');
    assert.equal(cli.code, 2);
    assert.equal(cli.stderr.trim().split('\n').length, 1, cli.stderr);
    const nan = await on('n1', 'service', 'create', '--name', 'x', '--replicas', 'NaN', 'whoami');
    assert.equal(nan.code, 2);
    const name = await on('n1', 'service', 'create', '--name', 'Web', 'whoami');
    assert.equal(name.code, 2);
    assert.match(name.stderr, /name/);
  });

  test('network create: overlap and invalid CIDR are clear errors; ls/inspect/rm', async () => {
    const ok = await on('n1', 'network', 'create', '-d', 'overlay', '--subnet', '10.20.0.0/24', 'app');
    assert.equal(ok.code, 0, ok.stderr);
    const overlap = await on('n1', 'network', 'create', '--subnet', '10.20.0.0/16', 'app2');
    assert.equal(overlap.code, 2);
    assert.match(overlap.stderr, /overlap/i);
    const cidr = await on('n1', 'network', 'create', '--subnet', '10.20.0.0/33', 'app3');
    assert.equal(cidr.code, 2);
    assert.match(cidr.stderr, /^netctl: .*10\.20\.0\.0\/33/);
    const ls = await on('n1', 'network', 'ls');
    assert.match(ls.stdout, /app\s+overlay\s+swarm\s+10\.20\.0\.0\/24/);
    assert.match(ls.stdout, /ingress\s+overlay/);
    assert.equal((await on('n1', 'network', 'rm', 'ingress')).code, 2);
    assert.equal((await on('n1', 'network', 'rm', 'app')).code, 0);
  });

  test('service rm removes the tasks from the nodes', async () => {
    assert.equal((await on('n1', 'service', 'rm', 'web', 'agent')).code, 0);
    for (const n of ['n1', 'n2', 'n3']) {
      await waitFor(`no tasks left on ${n}`, async () => {
        const tasks = await agentClient(lab, n).call<Array<{ state: string }>>('GET', '/v1/tasks');
        return tasks.every((t) => t.state === 'stopped');
      }, 30_000, 250);
    }
    assert.deepEqual(await ps('agent').catch(() => []), []);
  });
});
