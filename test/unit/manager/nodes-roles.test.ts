/**
 * Issue 15's node rows on the manager, in-process over real mTLS (MemoryStore, no agents):
 * a node's description (resources, platform, engine labels) lands in its record and in the
 * `docker info`-style view with reserved / total; the cluster strategy is stored, shown and
 * validated; promote / demote follow docker's rules (the last manager is never demoted; a
 * worker is promoted only where managers can share the store) and a renewed certificate
 * carries the new role; a limit on the netns runtime is refused, not dropped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import { MemoryStore } from '../../../src/adapters/store/memory.js';
import { createNodeKeyAndCsr } from '../../../src/adapters/pki/crypto.js';
import type { NodeIdentity } from '../../../src/adapters/pki/files.js';
import { Manager } from '../../../src/manager/manager.js';
import { ManagerClient } from '../../../src/manager/client.js';
import { renewNodeCertificate } from '../../../src/manager/join.js';
import type { ClusterInfoView } from '../../../src/manager/control/cluster-routes.js';
import { waitFor } from '../../helpers/lab.js';
import { startManagerRig, type ManagerRig } from '../../helpers/manager-rig.js';

const GiB = 2 ** 30;
const root = mkdtempSync(join(tmpdir(), 'meshd-nroles-'));
const ETCD = { kind: 'etcd' as const, endpoints: ['http://127.0.0.1:2379'] };
let addr: string;
let admin: ManagerClient;
let w2: NodeIdentity;
let w2c: ManagerClient;

const isCode = (code: string, re?: RegExp) => (e: unknown): boolean => e instanceof MeshError && e.code === code && (!re || re.test(e.message));
const description = {
  runtimes: ['netns'], resources: { cpuMilli: 2000, memoryBytes: 4 * GiB }, platform: { os: 'linux', arch: 'x86_64' },
};

let rig: ManagerRig;

before(async () => {
  // The manager says it runs on etcd (so a promoted node can be handed the store); the records live in memory.
  rig = await startManagerRig({ root, storeConfig: ETCD, workers: ['w2'] });
  ({ addr } = rig);
  admin = rig.clients.m1!;
  w2 = rig.ids.w2!;
  w2c = rig.clients.w2!;
});

after(async () => {
  await rig?.close();
});

describe('node resources and the info view', () => {
  test('a status report\'s description lands in the node record; the answer names the node\'s role', async () => {
    const r = await w2c.call<{ role: string }>('POST', '/v1/dispatcher/status', { tasks: [], description });
    assert.equal(r.role, 'worker');
    const n = await admin.call<{ resources: unknown; platform: unknown }>('GET', `/v1/nodes/${w2.nodeId}`);
    assert.deepEqual(n.resources, description.resources);
    assert.deepEqual(n.platform, description.platform);
  });

  test('info: strategy spread by default, reserved / total per node as the scheduler counts them', async () => {
    await admin.call('POST', '/v1/services', { name: 'res', image: 'whoami', resources: { cpuMilli: 500, memoryBytes: GiB }, mode: { replicated: { replicas: 2 } } });
    const { value: info } = await waitFor('both tasks placed on w2 (m1 reports no resources)', async () => {
      const v = await admin.call<ClusterInfoView>('GET', '/v1/info');
      return v.nodes.find((n) => n.hostname === 'w2')!.tasks === 2 ? v : undefined;
    }, 10_000, 50);
    assert.equal(info.strategy, 'spread');
    assert.ok(info.filters.includes('resources'));
    const n = info.nodes.find((x) => x.hostname === 'w2')!;
    assert.deepEqual(n.reserved, { cpuMilli: 1000, memoryBytes: 2 * GiB });
    assert.deepEqual(n.total, description.resources);
    assert.deepEqual(info.nodes.find((x) => x.hostname === 'm1')!.total, { cpuMilli: 0, memoryBytes: 0 });
    await admin.call('DELETE', '/v1/services/res');
  });

  test('cluster settings: the strategy is stored and shown; a bad one is refused', async () => {
    assert.deepEqual(await admin.call('POST', '/v1/cluster/settings', { strategy: 'binpack' }), { strategy: 'binpack' });
    assert.equal((await admin.call<ClusterInfoView>('GET', '/v1/info')).strategy, 'binpack');
    await assert.rejects(admin.call('POST', '/v1/cluster/settings', { strategy: 'pack' }), isCode('MESHD_BAD_ARGUMENT', /strategy/));
    await assert.rejects(admin.call('POST', '/v1/cluster/settings', { strategy: 'spread', extra: 1 }), isCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(w2c.call('POST', '/v1/cluster/settings', { strategy: 'spread' }), isCode('MESHD_FORBIDDEN'));
    await admin.call('POST', '/v1/cluster/settings', { strategy: 'spread' });
  });

  test('a limit on the netns runtime is MESHD_UNSUPPORTED, on create and on update', async () => {
    await assert.rejects(admin.call('POST', '/v1/services', { name: 'lim', image: 'whoami', limits: { cpuMilli: 500, memoryBytes: 0 } }), isCode('MESHD_UNSUPPORTED', /netns runtime/));
    const s = await admin.call<{ id: string; version: number; spec: Record<string, unknown> }>('POST', '/v1/services', { name: 'lim', image: 'whoami' });
    await assert.rejects(admin.call('POST', `/v1/services/${s.id}/update`, { spec: { ...s.spec, limits: { cpuMilli: 0, memoryBytes: 64 * 2 ** 20 } }, version: s.version }), isCode('MESHD_UNSUPPORTED'));
    await admin.call('DELETE', `/v1/services/${s.id}`);
  });
});

describe('promote and demote', () => {
  test('the last manager is never demoted', async () => {
    await assert.rejects(admin.call('POST', '/v1/nodes/m1', { role: 'worker' }), isCode('MESHD_BAD_ARGUMENT', /attempting to demote the last manager/));
  });

  test('promote: the record, the status answer and a renewed certificate carry the manager role and the shared store', async () => {
    await admin.call('POST', `/v1/nodes/${w2.nodeId}`, { role: 'manager' });
    assert.equal((await w2c.call<{ role: string }>('POST', '/v1/dispatcher/status', { tasks: [] })).role, 'manager');
    const renewed = await renewNodeCertificate(join(root, 'w2'), 10_000, addr);
    assert.equal(renewed.role, 'manager');
    assert.deepEqual(renewed.store, ETCD);
    const promoted = new ManagerClient(addr, { caPem: renewed.caPem, certPem: renewed.certPem, keyPem: renewed.keyPem });
    assert.equal((await promoted.call<{ role: string }>('GET', '/v1/whoami')).role, 'manager');
    // Now two managers: m1 may be demoted, and back (w2 stays).
    await admin.call('POST', '/v1/nodes/m1', { role: 'worker' });
    await promoted.call('POST', '/v1/nodes/m1', { role: 'manager' });
    // Demote w2: its next certificate is a worker's, without a store.
    await admin.call('POST', `/v1/nodes/${w2.nodeId}`, { role: 'worker' });
    const back = await renewNodeCertificate(join(root, 'w2'), 10_000, addr);
    assert.equal(back.role, 'worker');
    assert.equal(back.store, undefined);
  });

  test('on the embedded store of one manager a worker cannot be promoted (refused, not half-done)', async () => {
    const solo = await Manager.initCluster({ dataDir: join(root, 's1'), store: new MemoryStore(), nodeName: 's1', advertiseAddr: '127.0.0.1' });
    const { csrPem } = await createNodeKeyAndCsr('sw');
    const j = await solo.join({ token: await solo.joinToken('worker'), csr: csrPem, name: 'sw' }, '127.0.0.1');
    await assert.rejects(solo.nodes.update(j.nodeId, { role: 'manager' }), isCode('MESHD_UNSUPPORTED', /shared etcd store/));
    assert.equal((await solo.nodes.find(j.nodeId)).node.role, 'worker');
    await assert.rejects(solo.nodes.update('s1', { role: 'worker' }), isCode('MESHD_BAD_ARGUMENT', /last manager/));
    await assert.rejects(solo.nodes.update('s1', { role: 'boss' }), isCode('MESHD_BAD_ARGUMENT', /role/));
  });
});
