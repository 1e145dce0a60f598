/**
 * The control plane in-process over real mTLS on 127.0.0.1 (ephemeral port): a manager
 * and two joined workers (identities on disk, no agents), gossip liveness faked by a map.
 * The test plays the nodes' part of the dispatcher (fetch assignments, report states), so
 * placement, scaling, drain, node loss, rolling updates and bad input are checked without
 * a kernel. A unit test (in-process, MemoryStore, no agents): the same paths on etcd with real
 * agents are covered by the lab tests (test/integration/manager/*-lab.test.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Assignment } from '../../../src/core/assignments.js';
import type { NodeIdentity } from '../../../src/adapters/pki/files.js';
import { Manager } from '../../../src/manager/manager.js';
import { ManagerClient } from '../../../src/manager/client.js';
import { ControlPlane } from '../../../src/manager/control/index.js';
import { waitFor } from '../../helpers/lab.js';
import { meshCode } from '../../helpers/errors.js';
import { startManagerRig, type ManagerRig } from '../../helpers/manager-rig.js';

const root = mkdtempSync(join(tmpdir(), 'meshd-ctl-'));
const members = new Map<string, 'alive' | 'dead'>();
let mgr: Manager;
let cp: ControlPlane;
let admin: ManagerClient;
let addr: string;
const ids: Record<string, NodeIdentity> = {};
const clients: Record<string, ManagerClient> = {};

interface TaskV { id: string; name: string; node: string | null; nodeId: string | null; desiredState: string; state: string; addresses: Record<string, string>; specVersion: number }


/** Every node plays its worker: run what is assigned, stop what is to stop. */
async function nodesRun(names = Object.keys(clients)): Promise<void> {
  for (const n of names) {
    if (members.get(n) === 'dead') continue;
    const list = await clients[n]!.call<Assignment[]>('GET', '/v1/dispatcher/assignments');
    const tasks = list.map((a) => ({ id: a.task.id, state: a.desiredState === 'running' ? 'running' : 'stopped', error: null }));
    await clients[n]!.call('POST', '/v1/dispatcher/status', { tasks });
  }
}

async function live(svc: string): Promise<TaskV[]> {
  return (await admin.call<TaskV[]>('GET', `/v1/tasks?service=${svc}`)).filter((t) => t.desiredState !== 'shutdown');
}

function perNode(ts: TaskV[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of ts) out[t.node ?? '-'] = (out[t.node ?? '-'] ?? 0) + 1;
  return out;
}

/** Drives the nodes until `svc` has `n` running tasks; returns them. */
async function converged(svc: string, n: number, timeoutMs = 8000, also: (ts: TaskV[]) => boolean = () => true): Promise<TaskV[]> {
  return (await waitFor(`${svc} with ${n} running tasks`, async () => {
    await nodesRun();
    const ts = await live(svc);
    return ts.length === n && ts.every((t) => t.state === 'running') && also(ts) && ts;
  }, timeoutMs, 50)).value;
}

let rig: ManagerRig;

before(async () => {
  rig = await startManagerRig({ root, liveness: (h) => members.get(h), workers: ['w2', 'w3'] });
  ({ mgr, cp, addr } = rig);
  Object.assign(ids, rig.ids);
  for (const n of ['m1', 'w2', 'w3']) {
    members.set(n, 'alive');
    clients[n] = rig.clients[n]!;
  }
  admin = clients.m1!;
});

after(async () => {
  await rig?.close();
});

describe('control plane', () => {
  test('cluster init made the ingress network; overlap and bad CIDR are refused', async () => {
    const nets = await admin.call<Array<{ name: string; subnet: string; vni: number; ingress: boolean }>>('GET', '/v1/networks');
    const ing = nets.find((n) => n.name === 'ingress');
    assert.ok(ing?.ingress, JSON.stringify(nets));
    await admin.call('POST', '/v1/networks', { name: 'app', subnet: '10.10.0.0/24' });
    await assert.rejects(admin.call('POST', '/v1/networks', { name: 'app2', subnet: '10.10.0.128/25' }), (e: unknown) => meshCode('MESHD_BAD_ARGUMENT')(e) && /overlap/i.test((e as Error).message));
    await assert.rejects(admin.call('POST', '/v1/networks', { name: 'bad', subnet: '10.300.0.0/24' }), meshCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(admin.call('POST', '/v1/networks', { name: 'app', subnet: '10.11.0.0/24' }), meshCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(clients.w2!.call('POST', '/v1/networks', { name: 'x' }), meshCode('MESHD_FORBIDDEN'));
  });

  test('6 replicas spread 2/2/2 with addresses, VIP and dispatcher assignments', async () => {
    const s = await admin.call<{ id: string; vips: Record<string, string> }>('POST', '/v1/services', { name: 'web', image: 'whoami', mode: { replicated: { replicas: 6 } }, networks: ['app'] });
    assert.match(s.vips.app!, /^10\.10\.0\.\d+$/);
    const ts = await converged('web', 6);
    assert.deepEqual(perNode(ts), { m1: 2, w2: 2, w3: 2 });
    const ips = ts.map((t) => t.addresses.app);
    assert.equal(new Set(ips).size, 6);
    assert.ok(!ips.includes(s.vips.app));
    assert.match(ts[0]!.name, /^web\.\d+\.[0-9a-f]{24}$/);
    const list = await clients.w2!.call<Assignment[]>('GET', '/v1/dispatcher/assignments');
    assert.equal(list.length, 2);
    assert.equal(list[0]!.attachments[0]!.vip, s.vips.app);
    assert.equal(list[0]!.attachments[0]!.network.name, 'app');
  });

  test('scale to 9 adds 3 (3/3/3); drain empties a node; node loss reschedules with history', async () => {
    const s = await admin.call<{ id: string; version: number; spec: Record<string, unknown> }>('GET', '/v1/services/web');
    await admin.call('POST', `/v1/services/${s.id}/update`, { spec: { ...s.spec, mode: { replicated: { replicas: 9 } } }, version: s.version });
    assert.deepEqual(perNode(await converged('web', 9)), { m1: 3, w2: 3, w3: 3 });
    await admin.call('POST', '/v1/nodes/w3', { availability: 'drain' });
    // The drain is committed by the call; its tasks move in the next reconcile step, which the
    // first read can precede (a kept-alive connection answers faster than that step runs).
    const drained = await converged('web', 9, 8000, (ts) => perNode(ts).w3 === undefined);
    assert.equal(perNode(drained).w3, undefined);
    await admin.call('POST', '/v1/nodes/w3', { availability: 'active' });
    members.set('w2', 'dead');
    cp.kick();
    const after = await converged('web', 9, 8000, (ts) => perNode(ts).w2 === undefined);
    assert.equal(perNode(after).w2, undefined, JSON.stringify(perNode(after)));
    const all = await admin.call<TaskV[]>('GET', '/v1/tasks?service=web');
    assert.ok(all.some((t) => t.node === 'w2' && t.state === 'orphaned' && t.desiredState === 'shutdown'), 'history keeps the lost tasks');
    const nodes = await admin.call<Array<{ hostname: string; state: string }>>('GET', '/v1/nodes');
    assert.equal(nodes.find((n) => n.hostname === 'w2')!.state, 'down');
    members.set('w2', 'alive');
  });

  test('rolling update replaces every task with the new spec, and rollback returns', async () => {
    const s = await admin.call<{ id: string; version: number; spec: Record<string, unknown> }>('GET', '/v1/services/web');
    const spec = { ...s.spec, env: { V: '2' }, updateConfig: { parallelism: 3, delayMs: 0, monitorMs: 0 }, rollbackConfig: { parallelism: 0, delayMs: 0, monitorMs: 0 } };
    await admin.call('POST', `/v1/services/${s.id}/update`, { spec });
    await waitFor('update completed', async () => {
      await nodesRun();
      const v = await admin.call<{ update: { state: string } | null; version: number }>('GET', '/v1/services/web');
      const ts = await live('web');
      return v.update?.state === 'completed' && ts.length === 9 && ts.every((t) => t.state === 'running' && t.specVersion === v.version);
    }, 15_000, 50);
    await admin.call('POST', `/v1/services/${s.id}/rollback`, {});
    const back = await waitFor('rollback converged', async () => {
      await nodesRun();
      const v = await admin.call<{ spec: { env: Record<string, string> }; version: number; update: { state: string } | null }>('GET', '/v1/services/web');
      const ts = await live('web');
      return v.update?.state === 'completed' && ts.length === 9 && ts.every((t) => t.state === 'running' && t.specVersion === v.version) && v;
    }, 15_000, 50);
    assert.deepEqual(back.value.spec.env, {});
  });

  test('global service: one task per ready active node', async () => {
    await admin.call('POST', '/v1/services', { name: 'agent', image: 'whoami', mode: { global: {} } });
    assert.deepEqual(perNode(await converged('agent', 3)), { m1: 1, w2: 1, w3: 1 });
  });

  test('bad input → 4xx with a stable code, never 5xx', async () => {
    const base = { name: 'bad', image: 'whoami' };
    for (const replicas of [null, -1, 2 ** 53, 1.5, '3']) {
      await assert.rejects(admin.call('POST', '/v1/services', { ...base, mode: { replicated: { replicas } } }), meshCode('MESHD_BAD_ARGUMENT'));
    }
    for (const name of ['Web', '-x', 'a'.repeat(64), 'a_b', '']) {
      await assert.rejects(admin.call('POST', '/v1/services', { ...base, name }), meshCode('MESHD_BAD_ARGUMENT'));
    }
    await assert.rejects(admin.call('POST', '/v1/services', '{"name":"x","image":"y","__proto__":{"a":1}}'), meshCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(admin.call('POST', '/v1/services', '{"name":'), meshCode('MESHD_BAD_JSON'));
    await assert.rejects(admin.call('POST', '/v1/services', JSON.stringify({ ...base, env: { X: 'y'.repeat(1 << 20) } })), meshCode('MESHD_BODY_TOO_LARGE'));
    await assert.rejects(admin.call('POST', '/v1/services', { ...base, networks: ['nope'] }), meshCode('MESHD_NOT_FOUND'));
    await assert.rejects(admin.call('POST', '/v1/services', { ...base, name: 'web' }), meshCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(admin.call('POST', '/v1/dispatcher/status', { tasks: [{ id: 'x', state: 'bogus' }] }), meshCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(clients.w2!.call('GET', '/v1/services'), meshCode('MESHD_FORBIDDEN'));
    await assert.rejects(admin.call('DELETE', '/v1/networks/app'), meshCode('MESHD_BAD_ARGUMENT'));
  });

  test('a node cannot report on tasks of another node', async () => {
    const ts = await live('web');
    const other = ts.find((t) => t.node === 'w3')!;
    await clients.w2!.call('POST', '/v1/dispatcher/status', { tasks: [{ id: other.id, state: 'failed', error: 'forged' }] });
    const again = (await live('web')).find((t) => t.id === other.id)!;
    assert.equal(again.state, 'running');
  });

  test('health: the check reaches the assignment; reported health shows in ps and counts only once healthy', async () => {
    await assert.rejects(admin.call('POST', '/v1/services', { name: 'hc', image: 'whoami', healthcheck: { intervalMs: 0 } }), meshCode('MESHD_BAD_ARGUMENT'));
    await admin.call('POST', '/v1/services', { name: 'hc', image: 'whoami', healthcheck: { test: 'test -f /tmp/ok', intervalMs: 500, retries: 2 } });
    const { value: found } = await waitFor('hc assigned', async () => {
      for (const n of Object.keys(clients)) {
        const a = (await clients[n]!.call<Assignment[]>('GET', '/v1/dispatcher/assignments')).find((x) => x.task.serviceName === 'hc');
        if (a) return { n, a };
      }
      return undefined;
    }, 8000, 50);
    assert.deepEqual(found.a.task.healthcheck, { test: ['CMD-SHELL', 'test -f /tmp/ok'], intervalMs: 500, retries: 2 });
    const report = (health: string) => clients[found.n]!.call('POST', '/v1/dispatcher/status', { tasks: [{ id: found.a.task.id, state: 'running', error: null, health }] });
    await report('starting');
    const view = async () => ({
      task: (await admin.call<Array<TaskV & { health: string | null }>>('GET', '/v1/tasks?service=hc'))[0]!,
      svc: await admin.call<{ replicas: { running: number } }>('GET', '/v1/services/hc'),
    });
    let v = await view();
    assert.equal(v.task.state, 'running');
    assert.equal(v.task.health, 'starting');
    assert.equal(v.svc.replicas.running, 0, 'not counted until healthy');
    await report('healthy');
    v = await view();
    assert.equal(v.task.health, 'healthy');
    assert.equal(v.svc.replicas.running, 1);
    await admin.call('DELETE', '/v1/services/hc');
  });

  test('service rm shuts its tasks down and releases addresses; then the network can go', async () => {
    await admin.call('DELETE', '/v1/services/web');
    await waitFor('web tasks gone', async () => {
      await nodesRun();
      const all = await admin.call<TaskV[]>('GET', '/v1/tasks?service=agent');
      const web = (await admin.call<TaskV[]>('GET', '/v1/tasks')).filter((t) => t.name.startsWith('web.'));
      return all.length > 0 && web.length === 0;
    }, 10_000, 50);
    await admin.call('DELETE', '/v1/networks/app');
  });
});
