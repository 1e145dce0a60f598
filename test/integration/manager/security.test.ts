/**
 * Manager API security on 127.0.0.1 (ephemeral ports): joins with valid and invalid
 * tokens, client certificate checks (missing, foreign, expired, revoked, wrong role),
 * renewal, restart, and bad input → 4xx with stable codes, never 5xx.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeKeyAndCsr } from '../../../src/adapters/pki/crypto.js';
import { loadNodeIdentity, type NodeIdentity } from '../../../src/adapters/pki/files.js';
import { SqliteStore } from '../../../src/adapters/store/sqlite.js';
import { MemoryStore } from '../../../src/adapters/store/memory.js';
import { Manager } from '../../../src/manager/manager.js';
import { httpsRequest, ManagerClient, type ManagerEndpoint } from '../../../src/manager/client.js';
import { joinCluster, renewNodeCertificate } from '../../../src/manager/join.js';
import { managerSubsystem } from '../../../src/manager/index.js';
import { ManagerApi } from '../../../src/manager/server.js';
import { meshCode } from '../../helpers/errors.js';

const root = mkdtempSync(join(tmpdir(), 'meshd-mgr-'));
let dirN = 0;
const dir = (name: string): string => join(root, `${name}-${dirN++}`);

let mgr: Manager;
let store: SqliteStore;
let ep: ManagerEndpoint;
let addr: string;
let mgrDir: string;
let other: Manager; // another cluster
let otherAddr: string;
let w1: NodeIdentity;
let w1Dir: string;

const clientOf = (id: NodeIdentity, at = addr): ManagerClient => new ManagerClient(at, { caPem: id.caPem, certPem: id.certPem, keyPem: id.keyPem });

before(async () => {
  mgrDir = dir('mgr');
  store = SqliteStore.open({ path: join(mgrDir, 'state.db') });
  mgr = await Manager.initCluster({ dataDir: mgrDir, store, nodeName: 'mgr1', advertiseAddr: '127.0.0.1' });
  ep = await mgr.listen('127.0.0.1', 0);
  addr = `127.0.0.1:${ep.port}`;
  const oDir = dir('other');
  other = await Manager.initCluster({ dataDir: oDir, store: new MemoryStore(), nodeName: 'othermgr', advertiseAddr: '127.0.0.1' });
  otherAddr = `127.0.0.1:${(await other.listen('127.0.0.1', 0)).port}`;
  w1Dir = dir('w1');
  w1 = await joinCluster({ addr, token: await mgr.joinToken('worker'), nodeName: 'w1', dataDir: w1Dir, advertiseAddr: '127.0.0.1' });
});

after(async () => {
  await mgr?.close();
  await other?.close();
  await store?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('joining', () => {
  test('a valid worker token joins: identity saved (key 0600), worker role, listed by the manager', async () => {
    assert.equal(w1.role, 'worker');
    assert.equal(statSync(join(w1Dir, 'node.key')).mode & 0o777, 0o600);
    assert.deepEqual(loadNodeIdentity(w1Dir), w1);
    const me = await clientOf(w1).whoami();
    assert.equal(me.nodeId, w1.nodeId);
    assert.equal(me.role, 'worker');
    const nodes = await ManagerClient.fromDataDir(mgrDir, addr).listNodes();
    const w = nodes.find((n) => n.id === w1.nodeId)!;
    assert.equal(w.hostname, 'w1');
    assert.equal(w.role, 'worker');
    assert.equal(w.addr, '127.0.0.1');
  });

  test('a manager token joins as manager; may join as worker; a worker token cannot ask for manager', async () => {
    const m2 = await joinCluster({ addr, token: await mgr.joinToken('manager'), nodeName: 'm2', dataDir: dir('m2') });
    assert.equal(m2.role, 'manager');
    assert.equal((await clientOf(m2).listNodes()).length >= 3, true);
    const asWorker = await joinCluster({ addr, token: await mgr.joinToken('manager'), nodeName: 'mw', dataDir: dir('mw'), role: 'worker' });
    assert.equal(asWorker.role, 'worker');
    await assert.rejects(joinCluster({ addr, token: await mgr.joinToken('worker'), nodeName: 'sneaky', dataDir: dir('sneaky'), role: 'manager' }), meshCode('MESHD_TOKEN_REJECTED', 'role'));
  });

  test('malformed tokens are refused locally and by the server with MESHD_BAD_TOKEN', async () => {
    const good = await mgr.joinToken('worker');
    const bads: [string, string][] = [
      ['', 'shape'], ['garbage', 'shape'], [good.replace('MESHTKN', 'SWMTKN'), 'prefix'],
      [good.replace('MESHTKN-1-', 'MESHTKN-2-'), 'version'], [good.slice(0, -1), 'secret-length'], [good.replace(/-[0-9a-f]{64}-/, '-abc-'), 'digest-length'],
    ];
    for (const [t, reason] of bads) {
      await assert.rejects(joinCluster({ addr, token: t, nodeName: 'bad', dataDir: dir('bad') }), meshCode('MESHD_BAD_TOKEN', reason), t);
    }
    const { csrPem } = await createNodeKeyAndCsr('bad');
    const r = await httpsRequest(ep, { caPem: mgr.ca.certPem }, 'POST', '/v1/join', { token: 'MESHTKN-1-zz-zz', csr: csrPem, name: 'bad' });
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).code, 'MESHD_BAD_TOKEN');
  });

  test('a token of another cluster: the joiner refuses the manager (CA digest), the manager refuses the token', async () => {
    const foreign = await other.joinToken('worker');
    await assert.rejects(joinCluster({ addr, token: foreign, nodeName: 'x', dataDir: dir('x') }), meshCode('MESHD_CA_MISMATCH'));
    const { csrPem } = await createNodeKeyAndCsr('x');
    const r = await httpsRequest(ep, { caPem: mgr.ca.certPem }, 'POST', '/v1/join', { token: foreign, csr: csrPem, name: 'x' });
    assert.equal(r.status, 403);
    assert.deepEqual([JSON.parse(r.body).code, JSON.parse(r.body).details.reason], ['MESHD_TOKEN_REJECTED', 'ca-digest']);
  });

  test('a rotated (old) token is refused; the new one works; existing nodes are unaffected', async () => {
    const mc = ManagerClient.fromDataDir(mgrDir, addr);
    const old = await mc.joinToken('worker');
    const managerBefore = await mc.joinToken('manager');
    const fresh = await mc.joinToken('worker', true);
    assert.notEqual(fresh, old);
    assert.equal(await mc.joinToken('manager'), managerBefore, 'the other role keeps its token');
    await assert.rejects(joinCluster({ addr, token: old, nodeName: 'late', dataDir: dir('late') }), meshCode('MESHD_TOKEN_REJECTED', 'secret'));
    const ok = await joinCluster({ addr, token: fresh, nodeName: 'late', dataDir: dir('late') });
    assert.equal(ok.role, 'worker');
    assert.equal((await clientOf(w1).whoami()).nodeId, w1.nodeId);
  });

  test('joining twice into the same data directory is refused', async () => {
    await assert.rejects(joinCluster({ addr, token: await mgr.joinToken('worker'), nodeName: 'w1', dataDir: w1Dir }), meshCode('MESHD_CLUSTER_EXISTS'));
  });
});

describe('client certificates', () => {
  test('missing client certificate → MESHD_CERT_REJECTED (missing)', async () => {
    for (const path of ['/v1/nodes', '/v1/whoami', '/v1/cluster/join-token/worker']) {
      const r = await httpsRequest(ep, { caPem: mgr.ca.certPem }, 'GET', path);
      assert.equal(r.status, 403);
      assert.deepEqual([JSON.parse(r.body).code, JSON.parse(r.body).details.reason], ['MESHD_CERT_REJECTED', 'missing']);
    }
  });

  test('foreign client certificate (another CA) → MESHD_CERT_REJECTED (foreign)', async () => {
    const o = other.identity;
    const c = new ManagerClient(addr, { caPem: mgr.ca.certPem, certPem: o.certPem, keyPem: o.keyPem });
    await assert.rejects(c.listNodes(), meshCode('MESHD_CERT_REJECTED', 'foreign'));
  });

  test('a manager of another cluster is refused by the client (pinned CA)', async () => {
    await assert.rejects(clientOf(w1, otherAddr).whoami(), meshCode('MESHD_CA_MISMATCH'));
  });

  test('a node that is not a manager cannot pose as one (server OU check)', async () => {
    const fake = new ManagerApi(() => Promise.reject(new Error('unused')));
    fake.route('GET', '/v1/whoami', 'public', () => ({ json: { nodeId: 'fake', role: 'manager' } }));
    const { port } = await fake.listen({ caPem: w1.caPem, certPem: w1.certPem, keyPem: w1.keyPem }, '127.0.0.1', 0);
    try {
      await assert.rejects(clientOf(w1, `127.0.0.1:${port}`).whoami(), meshCode('MESHD_CERT_REJECTED', 'server-not-manager'));
    } finally {
      await fake.close();
    }
  });

  test('expired client certificate → MESHD_CERT_REJECTED (expired)', async () => {
    const { keyPem, csrPem } = await createNodeKeyAndCsr('w1');
    const past = new Date(Date.now() - 10 * 86_400_000);
    const issued = await mgr.ca.issue({ csrPem, nodeId: w1.nodeId, role: 'worker', now: past, validityMs: 86_400_000 });
    const c = new ManagerClient(addr, { caPem: w1.caPem, certPem: issued.certPem, keyPem });
    await assert.rejects(c.whoami(), meshCode('MESHD_CERT_REJECTED', 'expired'));
  });

  test('a worker calling manager-only routes → MESHD_FORBIDDEN (403)', async () => {
    const c = clientOf(w1);
    await assert.rejects(c.listNodes(), meshCode('MESHD_FORBIDDEN'));
    await assert.rejects(c.joinToken('manager'), meshCode('MESHD_FORBIDDEN'));
    await assert.rejects(c.joinToken('worker', true), meshCode('MESHD_FORBIDDEN'));
    await assert.rejects(c.removeNode(w1.nodeId), meshCode('MESHD_FORBIDDEN'));
    await assert.rejects(c.updateNode(w1.nodeId, { availability: 'drain' }), meshCode('MESHD_FORBIDDEN'));
    assert.equal((await c.whoami()).role, 'worker');
  });

  test('a removed node\'s certificate is refused (revoked); other nodes unaffected', async () => {
    const gone = await joinCluster({ addr, token: await mgr.joinToken('worker'), nodeName: 'gone', dataDir: dir('gone') });
    assert.equal((await clientOf(gone).whoami()).nodeId, gone.nodeId);
    const mc = ManagerClient.fromDataDir(mgrDir, addr);
    assert.deepEqual(await mc.removeNode(gone.nodeId), { removed: gone.nodeId });
    await assert.rejects(clientOf(gone).whoami(), meshCode('MESHD_CERT_REJECTED', 'revoked'));
    await assert.rejects(mc.inspectNode(gone.nodeId), meshCode('MESHD_NODE_NOT_FOUND'));
    assert.equal((await clientOf(w1).whoami()).nodeId, w1.nodeId);
  });

  test('renewal: a fresh certificate and key, and the node keeps working', async () => {
    const d = dir('renew');
    const n = await joinCluster({ addr, token: await mgr.joinToken('worker'), nodeName: 'renew', dataDir: d });
    const next = await renewNodeCertificate(d);
    assert.notEqual(next.certPem, n.certPem);
    assert.notEqual(next.keyPem, n.keyPem);
    assert.equal((await clientOf(next).whoami()).nodeId, n.nodeId);
    assert.deepEqual(loadNodeIdentity(d), next);
  });
});

describe('node administration', () => {
  test('update availability and labels, with optimistic version', async () => {
    const mc = ManagerClient.fromDataDir(mgrDir, addr);
    const v0 = await mc.inspectNode(w1.nodeId);
    const u = await mc.updateNode(w1.nodeId, { availability: 'drain', labelAdd: { zone: 'a', disk: 'ssd' }, version: v0.version as number });
    assert.equal(u.availability, 'drain');
    assert.deepEqual(u.labels, { zone: 'a', disk: 'ssd' });
    await assert.rejects(mc.updateNode(w1.nodeId, { availability: 'active', version: v0.version as number }), meshCode('MESHD_STORE_CONFLICT'));
    const u2 = await mc.updateNode('w1', { availability: 'active', labelRm: ['disk'] });
    assert.deepEqual([u2.availability, u2.labels], ['active', { zone: 'a' }]);
  });

  test('the manager refuses to remove itself; a manager needs force', async () => {
    const mc = ManagerClient.fromDataDir(mgrDir, addr);
    await assert.rejects(mc.removeNode(mgr.identity.nodeId, true), meshCode('MESHD_BAD_ARGUMENT'));
    const m3 = await joinCluster({ addr, token: await mgr.joinToken('manager'), nodeName: 'm3', dataDir: dir('m3') });
    await assert.rejects(mc.removeNode(m3.nodeId), meshCode('MESHD_BAD_ARGUMENT'));
    await mc.removeNode(m3.nodeId, true);
    await assert.rejects(clientOf(m3).listNodes(), meshCode('MESHD_CERT_REJECTED', 'revoked'));
  });
});

describe('bad input → 4xx with a stable code, never 5xx', () => {
  const mgrCreds = (): { caPem: string; certPem: string; keyPem: string } => loadNodeIdentity(mgrDir);
  const cases: { name: string; method: string; path: () => string; body: unknown; status: number; code: string; auth: boolean }[] = [
    { name: '1 MiB+ body', method: 'POST', path: () => '/v1/join', body: `{"x":"${'a'.repeat((1 << 20) + 10)}"}`, status: 400, code: 'MESHD_BODY_TOO_LARGE', auth: false },
    { name: 'bad JSON', method: 'POST', path: () => '/v1/join', body: '{"token": ', status: 400, code: 'MESHD_BAD_JSON', auth: false },
    { name: 'NaN literal', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: '{"version": NaN}', status: 400, code: 'MESHD_BAD_JSON', auth: true },
    { name: '__proto__ in labels', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: '{"labelAdd": {"__proto__": {"polluted": "yes"}}}', status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'version -1', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: { version: -1 }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'version 2^53', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: { version: 2 ** 53 }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'version 1.5', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: { version: 1.5 }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'unknown field', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: { nickname: 'x' }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    // `role` is known now (node promote): on the embedded store of one manager, promotion is refused with its reason
    { name: 'promote on the embedded store', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: { role: 'manager' }, status: 400, code: 'MESHD_UNSUPPORTED', auth: true },
    { name: 'bad role', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: { role: 'king' }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'bad availability', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: { availability: 'gone' }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'no body', method: 'POST', path: () => `/v1/nodes/${w1.nodeId}`, body: undefined, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'array body', method: 'POST', path: () => '/v1/join', body: [1, 2], status: 400, code: 'MESHD_BAD_ARGUMENT', auth: false },
    { name: 'name with uppercase', method: 'POST', path: () => '/v1/join', body: { token: 'x', csr: 'y', name: 'Bad_Name' }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: false },
    { name: 'name too long', method: 'POST', path: () => '/v1/join', body: { token: 'x', csr: 'y', name: 'a'.repeat(64) }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: false },
    { name: 'name with a dot', method: 'POST', path: () => '/v1/join', body: { token: 'x', csr: 'y', name: 'a.b' }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: false },
    { name: 'addr not an IP', method: 'POST', path: () => '/v1/join', body: { token: 'x', csr: 'y', name: 'ok', addr: 'evil.example' }, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: false },
    { name: 'garbage CSR with a valid token', method: 'POST', path: () => '/v1/join', body: 'TOKEN', status: 400, code: 'MESHD_BAD_ARGUMENT', auth: false },
    { name: 'bad role param', method: 'GET', path: () => '/v1/cluster/join-token/admin', body: undefined, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'GET rotate', method: 'GET', path: () => '/v1/cluster/join-token/worker?rotate=1', body: undefined, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'bad rotate flag', method: 'POST', path: () => '/v1/cluster/join-token/worker?rotate=maybe', body: undefined, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'unknown node', method: 'GET', path: () => '/v1/nodes/nope', body: undefined, status: 404, code: 'MESHD_NODE_NOT_FOUND', auth: true },
    { name: 'odd node ref', method: 'GET', path: () => '/v1/nodes/%20%00', body: undefined, status: 404, code: 'MESHD_NODE_NOT_FOUND', auth: true },
    { name: 'bad percent-encoding', method: 'GET', path: () => '/v1/nodes/%E0%A4%A', body: undefined, status: 400, code: 'MESHD_BAD_ARGUMENT', auth: true },
    { name: 'unknown route', method: 'GET', path: () => '/v1/nothing', body: undefined, status: 404, code: 'MESHD_UNKNOWN_ROUTE', auth: false },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      let body = c.body;
      if (body === 'TOKEN') body = { token: await mgr.joinToken('worker'), csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', name: 'csrtest' };
      const r = await httpsRequest(ep, c.auth ? mgrCreds() : { caPem: mgr.ca.certPem }, c.method, c.path(), body);
      assert.ok(r.status < 500, `${c.name}: status ${r.status} ${r.body.slice(0, 200)}`);
      assert.equal(r.status, c.status, r.body.slice(0, 300));
      assert.equal(JSON.parse(r.body).code, c.code);
    });
  }

  test('the prototype was not polluted and the manager still serves', async () => {
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((await clientOf(w1).whoami()).nodeId, w1.nodeId);
  });
});

describe('lifecycle', () => {
  test('initCluster refuses an existing cluster; a restarted manager keeps tokens, CA and nodes', async () => {
    await assert.rejects(Manager.initCluster({ dataDir: mgrDir, store, nodeName: 'again', advertiseAddr: '127.0.0.1' }), meshCode('MESHD_CLUSTER_EXISTS'));
    const d = dir('restart');
    const s1 = SqliteStore.open({ path: join(d, 'state.db') });
    const m1 = await Manager.initCluster({ dataDir: d, store: s1, nodeName: 'r1', advertiseAddr: '127.0.0.1' });
    const tok = await m1.joinToken('worker');
    const nodes = (await m1.nodes.list()).length;
    await s1.close();
    const s2 = SqliteStore.open({ path: join(d, 'state.db') });
    try {
      const m2 = await Manager.open({ dataDir: d, store: s2 });
      assert.equal(await m2.joinToken('worker'), tok);
      assert.equal(m2.ca.digest, m1.ca.digest);
      assert.equal((await m2.nodes.list()).length, nodes);
    } finally {
      await s2.close();
    }
  });

  test('the manager renews its own certificate and serves it on new connections', async () => {
    const before = mgr.identity;
    const next = await mgr.renewOwnCertificate(mgrDir);
    assert.notEqual(next.certPem, before.certPem);
    assert.deepEqual(loadNodeIdentity(mgrDir), next);
    assert.equal((await clientOf(w1).whoami()).nodeId, w1.nodeId, 'workers still verify the manager');
    assert.equal((await ManagerClient.fromDataDir(mgrDir, addr).whoami()).role, 'manager');
  });

  test('managerSubsystem: init, serve, stop, start again on the same data directory', async () => {
    const d = dir('sub');
    const sub = managerSubsystem({ dataDir: d, listenHost: '127.0.0.1', listenPort: 0, init: { nodeName: 'sub1', advertiseAddr: '127.0.0.1' } });
    await sub.start();
    const mc = ManagerClient.fromDataDir(d);
    assert.equal(mc.endpoint.port, sub.port());
    assert.equal((await mc.listNodes()).length, 1);
    await sub.stop();
    await assert.rejects(mc.listNodes(), meshCode('MESHD_MANAGER_UNREACHABLE'));
    const again = managerSubsystem({ dataDir: d, listenHost: '127.0.0.1', listenPort: 0 });
    await again.start();
    try {
      assert.equal((await ManagerClient.fromDataDir(d, `127.0.0.1:${again.port()!}`).listNodes()).length, 1);
    } finally {
      await again.stop();
    }
  });
});
