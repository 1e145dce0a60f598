/**
 * Two managers sharing one real etcd (loopback): a node joined through one is known to
 * the other, tokens and revocations are shared, and exactly one of them leads.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import { EtcdStore } from '../../../src/adapters/store/etcd.js';
import { Manager } from '../../../src/manager/manager.js';
import { ManagerClient } from '../../../src/manager/client.js';
import { joinCluster } from '../../../src/manager/join.js';
import { etcdLeadership } from '../../../src/manager/leadership.js';
import { startEtcd, type EtcdServer } from '../store/etcd-server.js';

let etcd: EtcdServer | undefined;
const dir = mkdtempSync(join(tmpdir(), 'meshd-mgr-ha-'));
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const code = (c: string, reason?: string) => (e: unknown): boolean =>
  e instanceof MeshError && e.code === c && (reason === undefined || e.details?.reason === reason);

async function eventually(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('two managers on one etcd share members, tokens and revocations; one leads at a time', async () => {
  const root = `/meshd-ha-${process.pid}/`;
  const sa = new EtcdStore({ hosts: [etcd!.url], root });
  const sb = new EtcdStore({ hosts: [etcd!.url], root });
  let a: Manager | undefined;
  let b: Manager | undefined;
  try {
    a = await Manager.initCluster({ dataDir: join(dir, 'a'), store: sa, nodeName: 'mgr-a', advertiseAddr: '127.0.0.1' });
    const addrA = `127.0.0.1:${(await a.listen('127.0.0.1', 0)).port}`;
    await joinCluster({ addr: addrA, token: await a.joinToken('manager'), nodeName: 'mgr-b', dataDir: join(dir, 'b') });
    b = await Manager.open({ dataDir: join(dir, 'b'), store: sb });
    const addrB = `127.0.0.1:${(await b.listen('127.0.0.1', 0)).port}`;
    assert.equal(b.ca.digest, a.ca.digest);

    // A worker joins through B with a token read from A; A sees it.
    const w = await joinCluster({ addr: addrB, token: await a.joinToken('worker'), nodeName: 'w', dataDir: join(dir, 'w') });
    const ca = ManagerClient.fromDataDir(join(dir, 'a'), addrA);
    const cb = ManagerClient.fromDataDir(join(dir, 'b'), addrB);
    assert.ok((await ca.listNodes()).some((n) => n.id === w.nodeId));
    assert.equal((await new ManagerClient(addrA, w).whoami()).nodeId, w.nodeId);

    // Rotation at B invalidates the old token at A.
    const old = await ca.joinToken('worker');
    await cb.joinToken('worker', true);
    await assert.rejects(joinCluster({ addr: addrA, token: old, nodeName: 'late', dataDir: join(dir, 'late') }), code('MESHD_TOKEN_REJECTED', 'secret'));

    // Removal at A is refused at B.
    await ca.removeNode(w.nodeId);
    await assert.rejects(new ManagerClient(addrB, w).whoami(), code('MESHD_CERT_REJECTED', 'revoked'));

    // Leadership: exactly one; the leader stepping down hands over.
    const la = etcdLeadership(sa, a.identity.nodeId, { ttlSeconds: 2 });
    const lb = etcdLeadership(sb, b.identity.nodeId, { ttlSeconds: 2 });
    try {
      await eventually(() => la.isLeader() || lb.isLeader(), 5000);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(Number(la.isLeader()) + Number(lb.isLeader()), 1);
      const [leader, follower] = la.isLeader() ? [la, lb] : [lb, la];
      const changes: boolean[] = [];
      follower.onChange((v) => changes.push(v));
      await leader.stop();
      await eventually(() => follower.isLeader(), 5000);
      assert.deepEqual(changes, [true]);
      assert.equal(leader.isLeader(), false);
    } finally {
      await la.stop();
      await lb.stop();
    }
  } finally {
    await a?.close();
    await b?.close();
    await sa.close();
    await sb.close();
  }
});
