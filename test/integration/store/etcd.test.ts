/**
 * etcd store against a real etcd on loopback: the compliance suite (each store under a
 * fresh key root), and leader election among three manager contenders.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdStore } from '../../../src/adapters/store/etcd.js';
import { storeCompliance } from '../../compliance/store.js';
import { startEtcd, type EtcdServer } from './etcd-server.js';

let etcd: EtcdServer | undefined;
before(async () => {
  etcd = await startEtcd();
});
after(async () => {
  await etcd?.stop();
});

let n = 0;
const open = (root = `/meshd-test-${process.pid}-${n++}/`): EtcdStore => new EtcdStore({ hosts: [etcd!.url], root });

// The fence of a real election on the store; deposed by revoking the leader's lease (what its expiry does).
storeCompliance('etcd', () => Promise.resolve(open()), {
  async hold(s) {
    const store = s as EtcdStore;
    const c = store.campaign('writer', { ttlSeconds: 30 });
    await c.elected();
    const fence = c.fence();
    assert.ok(fence && fence.createRevision > 0, 'an elected campaign has a fence');
    return {
      fence,
      depose: async () => {
        await store.revokeLease(await c.leaseId());
        // The candidate's own lease object learns it only at its next keepalive; stop it now
        // (its timers would keep the test process alive), the fence captured above stays stale.
        await c.resign().catch(() => undefined);
      },
    };
  },
});

async function eventually(cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('etcd leader election', () => {
  test('three contenders: exactly one leader; revoking its lease elects another', async () => {
    const root = `/meshd-election-${process.pid}/`;
    const stores = [open(root), open(root), open(root)];
    const observer = open(root);
    const seen: (string | undefined)[] = [];
    const stopObs = await observer.onLeaderChange((l) => seen.push(l));
    try {
      const lost: string[] = [];
      const campaigns = stores.map((s, i) => s.campaign(`mgr${i}`, { ttlSeconds: 2, onLost: () => lost.push(`mgr${i}`) }));
      await Promise.race(campaigns.map((c) => c.elected()));
      await new Promise((r) => setTimeout(r, 300));
      const leaders = campaigns.filter((c) => c.isLeader());
      assert.equal(leaders.length, 1, 'exactly one leader');
      const first = leaders[0]!;
      assert.equal(await observer.leader(), first.candidate);
      assert.ok(first.fence()?.key.endsWith(await first.leaseId()), 'the leader\'s fence is its election key');
      assert.ok(campaigns.every((c) => c === first || c.fence() === undefined), 'followers have no fence');
      await eventually(() => seen.at(-1) === first.candidate, 3000);

      // Kill the leader's lease, as if its manager died: another contender takes over.
      await observer.revokeLease(await first.leaseId());
      await eventually(() => campaigns.some((c) => c !== first && c.isLeader()), 5000);
      const next = campaigns.filter((c) => c !== first && c.isLeader());
      assert.equal(next.length, 1, 'exactly one new leader');
      await eventually(() => !first.isLeader() && lost.includes(first.candidate), 5000);
      assert.equal(first.fence(), undefined, 'a lost term has no fence');
      await eventually(async () => (await observer.leader()) === next[0]!.candidate, 3000);
      await eventually(() => seen.at(-1) === next[0]!.candidate, 3000);

      // A clean resign hands over too.
      await next[0]!.resign();
      const last = campaigns.find((c) => c !== first && c !== next[0])!;
      await eventually(() => last.isLeader(), 5000);
      assert.equal(await observer.leader(), last.candidate);
    } finally {
      await stopObs();
      for (const s of [...stores, observer]) await s.close();
    }
  });
});
