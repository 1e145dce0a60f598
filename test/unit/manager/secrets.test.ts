/**
 * Secrets, configs and the sealed store in-process over real mTLS on 127.0.0.1 (a manager and
 * two joined workers, MemoryStore, no agents; the test plays the nodes' dispatcher part):
 * the data key file and who gets it, sealed CA / keyring records, migration of an unsealed
 * store and the refusals; the secret/config routes and their refusals; per-task delivery only
 * to the task's node. End to end with Docker: test/integration/secrets/secrets-lab.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import type { Assignment } from '../../../src/core/assignments.js';
import { MemoryStore } from '../../../src/adapters/store/memory.js';
import type { NodeIdentity } from '../../../src/adapters/pki/files.js';
import { isSealed } from '../../../src/adapters/pki/seal.js';
import { Manager } from '../../../src/manager/manager.js';
import { ManagerClient } from '../../../src/manager/client.js';
import { joinCluster } from '../../../src/manager/join.js';
import { DATA_KEY_FILE, loadDataKey } from '../../../src/manager/data-key.js';
import { KEYS } from '../../../src/manager/model.js';
import { waitFor } from '../../helpers/lab.js';
import { meshCode } from '../../helpers/errors.js';
import { startManagerRig, type ManagerRig } from '../../helpers/manager-rig.js';

const root = mkdtempSync(join(tmpdir(), 'meshd-sec-'));
const GOSSIP_KEY = Buffer.alloc(32, 3).toString('base64');
const PLAIN = 'hunter2-unit-secret';
let store: MemoryStore;
let mgr: Manager;
let addr: string;
const ids: Record<string, NodeIdentity> = {};
const clients: Record<string, ManagerClient> = {};
const b64 = (s: string) => Buffer.from(s).toString('base64');

let rig: ManagerRig;

before(async () => {
  store = new MemoryStore();
  rig = await startManagerRig({ root, store, gossipKeys: [GOSSIP_KEY], workers: ['w2', 'w3'] });
  ({ mgr, addr } = rig);
  Object.assign(ids, rig.ids);
  Object.assign(clients, rig.clients);
  // w2 alone runs docker: the docker service lands there.
  await clients.w2!.call('POST', '/v1/dispatcher/status', { tasks: [], description: { runtimes: ['netns', 'docker'] } });
});

after(async () => {
  await rig?.close();
});

describe('sealed store', () => {
  test('init: data key file 0600 in the manager dir; CA key and keyring sealed; workers get no key', async () => {
    const keyFile = join(root, 'm1', DATA_KEY_FILE);
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const ca = (await store.get<Record<string, unknown>>(KEYS.ca))!.value;
    assert.equal(ca.keyPem, undefined);
    assert.ok(isSealed(ca.keySealed));
    assert.ok(!JSON.stringify(ca).includes('PRIVATE KEY'));
    const ring = (await store.get(KEYS.gossipKeys))!.value;
    assert.ok(isSealed(ring));
    assert.ok(!JSON.stringify(ring).includes(GOSSIP_KEY));
    assert.deepEqual(await mgr.keyring.current(), [GOSSIP_KEY]);
    assert.equal(existsSync(join(root, 'w2', DATA_KEY_FILE)), false);
  });

  test('a node joining with a manager token gets the data key (saved 0600); the answer carries none for workers', async () => {
    const dir = join(root, 'm2');
    await joinCluster({ addr, token: await mgr.joinToken('manager'), nodeName: 'm2', dataDir: dir, advertiseAddr: '127.0.0.1' });
    assert.equal(statSync(join(dir, DATA_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(loadDataKey(dir).exportForManager(), mgr.sealer.exportForManager());
  });

  test('migration: an unsealed store is re-sealed at open; a sealed one without the key file is refused; tampering is refused', async () => {
    const s2 = new MemoryStore();
    const dir = join(root, 'old');
    const m = await Manager.initCluster({ dataDir: dir, store: s2, nodeName: 'old', advertiseAddr: '127.0.0.1', gossipKeys: [GOSSIP_KEY] });
    // Make it look like a cluster from before sealing: plain CA key and keyring, no key file.
    await s2.put(KEYS.ca, { certPem: m.ca.certPem, keyPem: await m.ca.keyPem() });
    await s2.put(KEYS.gossipKeys, { keys: [GOSSIP_KEY] });
    rmSync(join(dir, DATA_KEY_FILE));
    const migrated: string[][] = [];
    const reopened = await Manager.open({ dataDir: dir, store: s2, onMigrated: (w) => migrated.push(w) });
    assert.deepEqual(migrated, [['cluster/ca', 'cluster/gossip-keys']]);
    assert.ok(isSealed((await s2.get<Record<string, unknown>>(KEYS.ca))!.value.keySealed));
    assert.ok(isSealed((await s2.get(KEYS.gossipKeys))!.value));
    assert.deepEqual(await reopened.keyring.current(), [GOSSIP_KEY]);
    await Manager.open({ dataDir: dir, store: s2, onMigrated: (w) => migrated.push(w) });
    assert.equal(migrated.length, 1, 'a sealed store is not migrated again');
    rmSync(join(dir, DATA_KEY_FILE));
    await assert.rejects(Manager.open({ dataDir: dir, store: s2 }), meshCode('MESHD_DATA_KEY_MISSING'));
    await reopened.close();
    await m.close();
    const tampered = await Manager.initCluster({ dataDir: join(root, 't'), store: new MemoryStore(), nodeName: 't', advertiseAddr: '127.0.0.1' });
    const rec = (await tampered.store.get<{ certPem: string; keySealed: { ct: string } }>(KEYS.ca))!.value;
    const ct = Buffer.from(rec.keySealed.ct, 'base64');
    ct[5] = ct[5]! ^ 1;
    await tampered.store.put(KEYS.ca, { ...rec, keySealed: { ...rec.keySealed, ct: ct.toString('base64') } });
    await assert.rejects(Manager.open({ dataDir: join(root, 't'), store: tampered.store }), meshCode('MESHD_UNSEAL_FAILED'));
  });
});

describe('secret and config routes', () => {
  test('create, ls, inspect: the payload is sealed in the store and never shown for a secret', async () => {
    const m1 = clients.m1!;
    const r = await m1.call<{ id: string }>('POST', '/v1/secrets', { name: 'pw', data: b64(PLAIN) });
    assert.match(r.id, /^[0-9a-f]{24}$/);
    const raw = JSON.stringify((await store.get('secrets/pw'))!.value);
    assert.ok(!raw.includes(PLAIN) && !raw.includes(b64(PLAIN)), 'sealed in the store');
    const list = await m1.call<Array<Record<string, unknown>>>('GET', '/v1/secrets');
    assert.deepEqual(list.map((s) => [s.name, s.size, 'data' in s]), [['pw', PLAIN.length, false]]);
    const one = await m1.call<Record<string, unknown>>('GET', `/v1/secrets/${r.id}`);
    assert.equal(one.name, 'pw');
    assert.ok(!JSON.stringify(one).includes(b64(PLAIN)));
    await m1.call('POST', '/v1/configs', { name: 'conf', data: b64('port 80\n') });
    assert.equal((await m1.call<{ data: string }>('GET', '/v1/configs/conf')).data, b64('port 80\n'), 'a config shows its data, as docker does');
  });

  test('refusals: duplicate, empty, over 500 KB, bad name, worker caller, unknown', async () => {
    const m1 = clients.m1!;
    await assert.rejects(m1.call('POST', '/v1/secrets', { name: 'pw', data: b64('x') }), (e: unknown) => meshCode('MESHD_BAD_ARGUMENT')(e) && /already exists/.test((e as Error).message));
    await assert.rejects(m1.call('POST', '/v1/secrets', { name: 'e', data: '' }), (e: unknown) => meshCode('MESHD_BAD_ARGUMENT')(e) && /empty/.test((e as Error).message));
    await assert.rejects(m1.call('POST', '/v1/secrets', { name: 'big', data: Buffer.alloc(500 * 1024 + 1).toString('base64') }), meshCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(m1.call('POST', '/v1/secrets', { name: 'a b', data: b64('x') }), meshCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(m1.call('POST', '/v1/secrets', JSON.parse(`{"name":"x","data":"${b64('x')}","__proto__":{"a":1}}`)), meshCode('MESHD_BAD_ARGUMENT'));
    await assert.rejects(clients.w2!.call('POST', '/v1/secrets', { name: 'w', data: b64('x') }), meshCode('MESHD_FORBIDDEN'));
    await assert.rejects(clients.w2!.call('GET', '/v1/secrets'), meshCode('MESHD_FORBIDDEN'));
    await assert.rejects(m1.call('GET', '/v1/secrets/nope'), meshCode('MESHD_NOT_FOUND'));
    await assert.rejects(m1.call('DELETE', '/v1/configs/nope'), meshCode('MESHD_NOT_FOUND'));
  });

  test('services: unknown secret refused; in use → rm refused naming the service; files only to the task\'s node', async () => {
    const m1 = clients.m1!;
    await assert.rejects(m1.call('POST', '/v1/services', { name: 'bad', image: 'busybox', secrets: [{ source: 'missing' }] }), (e: unknown) => meshCode('MESHD_NOT_FOUND')(e) && /no such secret: missing/.test((e as Error).message));
    await m1.call('POST', '/v1/services', { name: 'db', image: 'busybox', secrets: [{ source: 'pw', target: 'db-pw', mode: 0o440 }], configs: [{ source: 'conf' }] });
    await assert.rejects(m1.call('DELETE', '/v1/secrets/pw'), (e: unknown) => meshCode('MESHD_SECRET_IN_USE')(e) && (e as MeshError).details?.services !== undefined && /in use by the following service: db/.test((e as Error).message));
    await assert.rejects(m1.call('DELETE', '/v1/configs/conf'), meshCode('MESHD_SECRET_IN_USE'));
    const { value: a } = await waitFor('db assigned to w2', async () => (await clients.w2!.call<Assignment[]>('GET', '/v1/dispatcher/assignments')).find((x) => x.task.serviceName === 'db'), 8000, 50);
    assert.deepEqual(a.task.secrets, [{ source: 'pw', target: '/run/secrets/db-pw', uid: 0, gid: 0, mode: 0o440 }]);
    assert.ok(!JSON.stringify(a).includes(b64(PLAIN)), 'assignments carry references only');
    const files = await clients.w2!.call<{ files: Array<{ kind: string; name: string; target: string; mode: number; data: string }> }>('GET', `/v1/dispatcher/tasks/${a.task.id}/files`);
    assert.deepEqual(files.files.map((f) => [f.kind, f.name, f.target, f.mode, Buffer.from(f.data, 'base64').toString()]), [
      ['secret', 'pw', '/run/secrets/db-pw', 0o440, PLAIN], ['config', 'conf', '/conf', 0o444, 'port 80\n'],
    ]);
    await assert.rejects(clients.w3!.call('GET', `/v1/dispatcher/tasks/${a.task.id}/files`), meshCode('MESHD_FORBIDDEN'));
    await assert.rejects(m1.call('GET', `/v1/dispatcher/tasks/${a.task.id}/files`), meshCode('MESHD_FORBIDDEN'));
    const svc = await m1.call<{ id: string }>('GET', '/v1/services/db');
    await m1.call('DELETE', `/v1/services/${svc.id}`);
    await m1.call('DELETE', '/v1/secrets/pw');
    await m1.call('DELETE', '/v1/configs/conf');
    assert.deepEqual(await m1.call('GET', '/v1/secrets'), []);
  });
});
