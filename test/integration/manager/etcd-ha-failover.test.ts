/**
 * Two managers on one real etcd (loopback), composed as the agent composes them
 * (managerSubsystem + ControlPlane), nodes played by the test through ManagerPools: a
 * manager-token join gets the etcd store; the follower refuses writes naming the leader
 * and a pool that starts at the follower follows it; the leader stops mid rolling update
 * (parallelism 1) → the follower leads, resumes the update from the store and finishes it,
 * and the nodes' pools move to it by themselves. Fencing: a leader deposed behind its back
 * (its election key deleted while its lease lives on) cannot write and steps down.
 */
import { after, before, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import type { Assignment } from '../../../src/core/assignments.js';
import type { NodeIdentity } from '../../../src/adapters/pki/files.js';
import { managerSubsystem, type ManagerSubsystem } from '../../../src/manager/index.js';
import { ManagerClient, responseError } from '../../../src/manager/client.js';
import { joinCluster } from '../../../src/manager/join.js';
import { ManagerPool } from '../../../src/manager/pool.js';
import { ControlPlane } from '../../../src/manager/control/index.js';
import type { StoreConfig } from '../../../src/manager/store-config.js';
import { waitFor } from '../../helpers/lab.js';
import { startEtcd, type EtcdServer } from '../store/etcd-server.js';

let etcd: EtcdServer | undefined;
const dir = mkdtempSync(join(tmpdir(), 'meshd-mgr-hafo-'));
const subs: ManagerSubsystem[] = [];
const planes: ControlPlane[] = [];
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  for (const cp of planes) cp.stop();
  for (const s of subs) await s.stop();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface TaskV { id: string; node: string | null; desiredState: string; state: string; specVersion: number }

/** A manager as the agent runs it: store from `cfg`, control plane following leadership. */
async function startManager(name: string, cfg: StoreConfig, init: boolean): Promise<{ sub: ManagerSubsystem; cp: ControlPlane; addr: string }> {
  let cp!: ControlPlane;
  const sub = managerSubsystem({
    dataDir: join(dir, name), listenHost: '127.0.0.1', listenPort: 0, storeConfig: cfg, advertiseAddr: '127.0.0.1', leaderTtlSeconds: 2,
    ...(init ? { init: { nodeName: name, advertiseAddr: '127.0.0.1' } } : {}),
    configure: (m) => {
      cp = new ControlPlane({ manager: m, liveness: () => 'alive', tickMs: 50, absentGraceMs: 60_000, isLeader: () => m.isLeader() });
      cp.register();
    },
    onLeadershipChange: (leader) => cp.leadershipChanged(leader),
  });
  await sub.start();
  subs.push(sub);
  await cp.start();
  planes.push(cp);
  return { sub, cp, addr: `127.0.0.1:${sub.port()!}` };
}

const creds = (id: NodeIdentity) => ({ caPem: id.caPem, certPem: id.certPem, keyPem: id.keyPem });

test('leader stops mid rolling update: the follower leads, resumes and finishes it; nodes follow', { timeout: 120_000 }, async () => {
  const cfg: StoreConfig = { kind: 'etcd', endpoints: [etcd!.url], root: `/meshd-hafo-${process.pid}/` };
  const a = await startManager('a', cfg, true);
  await waitFor('a leads', () => a.sub.leadership()!.isLeader(), 10_000, 25);
  const adminA = a.sub.manager()!;
  const joinedB = await joinCluster({ addr: a.addr, token: await adminA.joinToken('manager'), nodeName: 'b', dataDir: join(dir, 'b'), hostManager: true });
  assert.equal(joinedB.role, 'manager');
  assert.deepEqual(joinedB.store, cfg, 'the join answer carries the shared store');
  const b = await startManager('b', joinedB.store!, false);
  const w = await joinCluster({ addr: b.addr, token: await adminA.joinToken('worker'), nodeName: 'w', dataDir: join(dir, 'w'), hostManager: true });
  assert.equal(w.store, undefined, 'workers are never told the store');
  assert.equal(b.sub.leadership()!.isLeader(), false);

  // The follower refuses a write, naming the leader; it serves reads.
  const direct = new ManagerClient(b.addr, creds(adminA.identity));
  const r = await direct.raw('POST', '/v1/networks', { name: 'app' });
  assert.equal(r.status, 503);
  const err = responseError(r);
  assert.ok(err instanceof MeshError && err.code === 'MESHD_NOT_LEADER', err.message);
  assert.deepEqual({ reason: err.details?.reason, leader: err.details?.leader, leaderName: err.details?.leaderName }, { reason: 'not-leader', leader: a.addr, leaderName: 'a' });
  assert.match(err.message, new RegExp(`not the leader: send POST /v1/networks to the leader, a at ${a.addr}`));
  const mgrs = await direct.call<Array<{ hostname: string; addr: string; status: string }>>('GET', '/v1/managers');
  assert.deepEqual(mgrs.map((m) => [m.hostname, m.addr, m.status]), [['a', a.addr, 'leader'], ['b', b.addr, 'reachable']]);

  // Every node talks through a pool that starts at the follower.
  const ids: Record<string, NodeIdentity> = { a: adminA.identity, b: b.sub.manager()!.identity, w };
  const pools: Record<string, ManagerPool> = {};
  for (const [n, id] of Object.entries(ids)) pools[n] = new ManagerPool(creds(id), [b.addr, a.addr], { timeoutMs: 5000 });
  const admin = pools.a!;
  const svc = await admin.call<{ id: string }>('POST', '/v1/services', {
    name: 'web', image: 'whoami', mode: { replicated: { replicas: 3 } }, updateConfig: { parallelism: 1, delayMs: 300, monitorMs: 0 },
  });
  assert.equal(admin.current, a.addr, 'the pool followed the redirect to the leader');

  const nodesRun = async (): Promise<void> => {
    for (const p of Object.values(pools)) {
      const list = await p.call<Assignment[]>('GET', '/v1/dispatcher/assignments');
      await p.call('POST', '/v1/dispatcher/status', { tasks: list.map((x) => ({ id: x.task.id, state: x.desiredState === 'running' ? 'running' : 'stopped', error: null })) });
    }
  };
  const live = async (): Promise<TaskV[]> => (await admin.call<TaskV[]>('GET', `/v1/tasks?service=${svc.id}`)).filter((t) => t.desiredState !== 'shutdown');
  await waitFor('3 running', async () => {
    await nodesRun();
    const ts = await live();
    return ts.length === 3 && ts.every((t) => t.state === 'running');
  }, 20_000, 50);

  const cur = await admin.call<{ version: number; spec: Record<string, unknown> }>('GET', `/v1/services/${svc.id}`);
  await admin.call('POST', `/v1/services/${svc.id}/update`, { spec: { ...cur.spec, env: { V: '2' } } });
  const target = cur.version + 1;
  await waitFor('one slot updated, two left', async () => {
    await nodesRun();
    const ts = await live();
    return ts.some((t) => t.specVersion === target && t.state === 'running') && ts.filter((t) => t.specVersion !== target).length >= 1;
  }, 20_000, 20);

  // The leader goes away (its API closes; it resigns): b must take over.
  const stoppedAt = Date.now();
  a.cp.stop();
  await a.sub.stop();
  await waitFor('b leads', () => b.sub.leadership()!.isLeader(), 10_000, 25);
  process.stdout.write(`# b leads ${Date.now() - stoppedAt} ms after a stopped\n`);

  const done = await waitFor('update completed under b', async () => {
    await nodesRun();
    const s = await admin.call<{ version: number; update: { state: string } | null }>('GET', `/v1/services/${svc.id}`);
    const ts = await live();
    return s.update?.state === 'completed' && ts.length === 3 && ts.every((t) => t.state === 'running' && t.specVersion === s.version) && s;
  }, 30_000, 50);
  assert.equal(done.value.version, target);
  for (const p of Object.values(pools)) assert.equal(p.current, b.addr, 'every pool moved to the new leader');
  const after = await admin.call<Array<{ hostname: string; status: string }>>('GET', '/v1/managers');
  assert.equal(after.find((m) => m.status === 'leader')?.hostname, 'b');
});

test('a leader deposed without noticing (its election key gone, its lease alive): its writes are refused and it steps down', { timeout: 60_000 }, async () => {
  const cfg: StoreConfig = { kind: 'etcd', endpoints: [etcd!.url], root: `/meshd-fence-${process.pid}/` };
  const a = await startManager('da', cfg, true);
  await waitFor('a leads', () => a.sub.leadership()!.isLeader(), 10_000, 25);
  const adminA = a.sub.manager()!;
  const joinedB = await joinCluster({ addr: a.addr, token: await adminA.joinToken('manager'), nodeName: 'db', dataDir: join(dir, 'db'), hostManager: true });
  const b = await startManager('db', joinedB.store!, false);
  await waitFor('b campaigns behind a', async () => (await b.sub.manager()!.leader())?.nodeId === adminA.identity.nodeId, 10_000, 25);

  // End a's term behind its back: delete its election key. Its lease keeps being renewed, so
  // nothing tells a; b, next in line, is elected. Two managers now believe they lead.
  const fence = a.sub.leadership()!.fence()!;
  assert.ok(fence, 'the leader has a fence');
  const raw = new Etcd3({ hosts: [etcd!.url] });
  try {
    assert.equal((await raw.delete().key(fence.key)).deleted, '1');
  } finally {
    raw.close();
  }
  await waitFor('b leads', () => b.sub.leadership()!.isLeader(), 10_000, 25);
  assert.equal(a.sub.leadership()!.isLeader(), true, 'a has not noticed');

  // a's write (a network create through its own API) is fenced out: nothing lands, a steps down.
  const toA = new ManagerClient(a.addr, creds(adminA.identity));
  const r = await toA.raw('POST', '/v1/networks', { name: 'fenced' });
  const err = responseError(r);
  assert.equal(r.status, 503);
  assert.ok(err instanceof MeshError && err.code === 'MESHD_NOT_LEADER' && err.details?.reason === 'deposed', err.message);
  assert.equal(a.sub.leadership()!.isLeader(), false, 'a stepped down at once');
  const toB = new ManagerClient(b.addr, creds(adminA.identity));
  assert.ok(!(await toB.call<Array<{ name: string }>>('GET', '/v1/networks')).some((n) => n.name === 'fenced'), 'the deposed write did not land');
  // A leader-only manager write (node update) likewise, now refused as a follower naming b.
  const nl = responseError(await toA.raw('POST', `/v1/nodes/da`, { labelAdd: { x: '1' } }));
  assert.ok(nl instanceof MeshError && nl.code === 'MESHD_NOT_LEADER' && nl.details?.reason === 'not-leader', nl.message);
  assert.equal(nl.details?.leader, b.addr);
  assert.match(nl.message, new RegExp(`the leader, db at ${b.addr}`));

  // b writes; a campaigns again and follows b.
  assert.equal((await toB.raw('POST', '/v1/networks', { name: 'fenced' })).status, 201);
  await waitFor('a campaigns again behind b', async () => {
    const mgrs = await toB.call<Array<{ hostname: string; status: string }>>('GET', '/v1/managers');
    return mgrs.find((m) => m.status === 'leader')?.hostname === 'db' && mgrs.some((m) => m.hostname === 'da' && m.status === 'reachable');
  }, 10_000, 50);
  assert.equal(a.sub.leadership()!.isLeader(), false);
});
