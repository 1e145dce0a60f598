/**
 * Leader fencing in the manager, over the in-memory store with a fake leadership: every
 * leader write (node update, token rotation, control-plane commits, reconcile steps)
 * carries the term's fence; a store that refuses it (the term ended behind the manager's
 * back) makes the write fail with MESHD_NOT_LEADER, writes nothing, and the manager steps
 * down. The real etcd refusal is covered by the store compliance suite and
 * test/integration/manager/etcd-ha-failover.test.ts.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import { MemoryStore } from '../../../src/adapters/store/memory.js';
import { deposed, type LeaderFence, type TxnOp, type TxnOptions } from '../../../src/adapters/store/store.js';
import { Manager } from '../../../src/manager/manager.js';
import type { Leadership } from '../../../src/manager/leadership.js';
import { ControlPlane } from '../../../src/manager/control/index.js';
import { CKEYS } from '../../../src/manager/control/model.js';

const root = mkdtempSync(join(tmpdir(), 'meshd-fence-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Refuses fenced writes whose fence is not the live term's (what etcd's compare does). */
class FencedMemoryStore extends MemoryStore {
  live: LeaderFence | undefined;
  readonly seen: Array<LeaderFence | undefined> = [];
  override txn(ops: TxnOp[], opts?: TxnOptions): Promise<number> {
    this.seen.push(opts?.fence);
    const f = opts?.fence;
    if (f && (f.key !== this.live?.key || f.createRevision !== this.live.createRevision)) return Promise.reject(deposed(f, 0));
    return super.txn(ops, opts);
  }
}

/** A leadership the test drives: `term` is the fence it was elected with. */
function fakeLeadership(term: LeaderFence) {
  const subs = new Set<(l: boolean) => void>();
  const st = { leader: true, term: term as LeaderFence | undefined, stepDowns: [] as Error[] };
  const set = (v: boolean): void => {
    if (st.leader === v) return;
    st.leader = v;
    for (const cb of subs) cb(v);
  };
  const l: Leadership = {
    isLeader: () => st.leader,
    leader: () => Promise.resolve(st.leader ? { nodeId: 'self', addr: '127.0.0.1:1' } : { nodeId: 'other', addr: '127.0.0.2:2377' }),
    onChange: (cb) => {
      subs.add(cb);
      return () => subs.delete(cb);
    },
    fence: () => (st.leader ? st.term : undefined),
    stepDown: (e) => {
      st.stepDowns.push(e);
      set(false);
    },
    stop: () => Promise.resolve(),
  };
  return { l, st, set };
}

const isCode = (c: string, reason?: string) => (e: unknown): boolean =>
  e instanceof MeshError && e.code === c && (reason === undefined || e.details?.reason === reason);

async function setup(name: string) {
  const store = new FencedMemoryStore();
  const term: LeaderFence = { key: '/meshd/election/manager-leader/1', createRevision: 7 };
  store.live = term;
  const m = await Manager.initCluster({ dataDir: join(root, name), store, nodeName: name, advertiseAddr: '127.0.0.1' });
  const f = fakeLeadership(term);
  m.setLeadership(f.l);
  const errors: MeshError[] = [];
  const cp = new ControlPlane({ manager: m, liveness: (h) => (h === 'c' ? 'dead' : 'alive'), tickMs: 60_000, absentGraceMs: 60_000, isLeader: () => m.isLeader(), onError: (e) => errors.push(e) });
  f.l.onChange((v) => cp.leadershipChanged(v));
  return { store, term, m, f, cp, errors };
}

test('leader writes carry the fence; a deposed leader\'s node update is refused, writes nothing, and it steps down', async () => {
  const { store, term, m, f } = await setup('a');
  await m.nodes.update('a', { labels: { zone: 'x' } });
  assert.deepEqual(store.seen.at(-1), term, 'the node update carried the term');
  await m.rotateJoinToken('worker');
  assert.deepEqual(store.seen.at(-1), term, 'the token rotation carried the term');

  store.live = { key: term.key, createRevision: 99 }; // the term ended; this manager has not noticed
  const before = await store.revision();
  await assert.rejects(m.nodes.update('a', { labels: { zone: 'y' } }), isCode('MESHD_NOT_LEADER', 'deposed'));
  assert.equal(await store.revision(), before, 'nothing written');
  assert.equal(f.st.stepDowns.length, 1, 'the manager stepped down');
  assert.equal(m.isLeader(), false);
  // Now a follower: a leader-only write is refused before the store, naming the leader.
  await assert.rejects(m.nodes.update('a', { labels: { zone: 'z' } }), (e: unknown) =>
    isCode('MESHD_NOT_LEADER', 'not-leader')(e) && (e as MeshError).details?.leader === '127.0.0.2:2377' && /the leader, .*127\.0\.0\.2:2377/.test((e as MeshError).message));
  assert.equal((await m.nodes.find('a')).node.labels.zone, 'x');
});

test('a deposed leader\'s control-plane change and reconcile step are dropped; it steps down', async () => {
  const { store, term, m, f, cp, errors } = await setup('b');
  await cp.start();
  try {
    assert.equal((await store.list(CKEYS.networks)).length, 1, 'ingress created by the leader');
    assert.deepEqual(store.seen.at(-1), term);

    // An API-like change (a network create) once the term ended behind its back.
    store.live = undefined;
    const before = await store.revision();
    await assert.rejects(cp.serialize((st) => {
      st.putNetwork({ id: 'n1', name: 'app', driver: 'overlay', subnet: '10.9.0.0/24', gateway: '10.9.0.1', vni: 4242, attachable: false, ingress: false, createdAt: 0 });
    }), isCode('MESHD_NOT_LEADER', 'deposed'));
    assert.equal(await store.revision(), before);
    assert.equal(f.st.stepDowns.length, 1);
    assert.equal(m.isLeader(), false);

    // Elected again (a new term): the reconcile step writes; then that term ends unnoticed too.
    const term2: LeaderFence = { key: '/meshd/election/manager-leader/2', createRevision: 50 };
    store.live = term2;
    f.st.term = term2;
    f.set(true);
    // A node record whose state the step must change (gossip says dead → down), so the step writes.
    const node = (await m.nodes.find('b')).node;
    await store.put(`nodes/${'c'.repeat(24)}`, { ...node, id: 'c'.repeat(24), hostname: 'c', role: 'worker', state: 'ready', createdAt: 0 });
    store.live = undefined;
    const steps = cp.stepCount;
    cp.kick();
    await cp.serialize(() => undefined).catch(() => undefined); // wait for the queued step
    assert.ok(cp.stepCount > steps, 'the step ran');
    assert.equal((await store.get<{ state: string }>(`nodes/${'c'.repeat(24)}`))!.value.state, 'ready', 'its result was not written');
    assert.ok(errors.some((e) => e.code === 'MESHD_NOT_LEADER' && e.details?.reason === 'deposed'), 'the dropped step is reported');
    assert.equal(f.st.stepDowns.length, 2);
    assert.equal(m.isLeader(), false);
  } finally {
    cp.stop();
  }
});

test('a change queued while leading fails if leadership ended before it ran; an old term\'s refusal does not end a new term', async () => {
  const { store, term, m, f, cp } = await setup('c');
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  const first = cp.serialize(() => {
    started();
    return gate;
  });
  const second = cp.serialize((st) => st.putService({ id: 's', spec: {}, version: 1, vips: {} } as never));
  await running;
  f.set(false);
  release();
  await first;
  await assert.rejects(second, isCode('MESHD_NOT_LEADER', 'not-leader'));
  assert.equal(await store.get(CKEYS.service('s')), undefined);
  assert.equal(f.st.stepDowns.length, 0, 'noticed loss: no step-down needed');

  // A refusal fenced with the old term while a newer term leads is ignored.
  const term2: LeaderFence = { key: term.key.replace(/1$/, '2'), createRevision: 60 };
  f.st.term = term2;
  f.set(true);
  m.deposedBy(deposed(term, 0));
  assert.equal(m.isLeader(), true);
  m.deposedBy(deposed(term2, 0));
  assert.equal(m.isLeader(), false);
});
