/**
 * The one Store compliance suite (js-libp2p style): every backend — memory, sqlite, etcd —
 * runs exactly these tests. `factory` returns a fresh, empty store for each test.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../src/core/errors.js';
import type { LeaderFence, Store, WatchEvent } from '../../src/adapters/store/store.js';

/**
 * How a backend's leader fence is obtained for the suite. `hold` elects the store's writer
 * and returns its fence; `depose` (backends with an election) ends that term behind the
 * writer's back, as a lease expiry does. Without `fencing`, the backend has a single writer
 * and holds any well-formed fence.
 */
export interface Fencing {
  hold(s: Store): Promise<{ fence: LeaderFence; depose?: () => Promise<void> }>;
}

const singleWriter: Fencing = { hold: () => Promise.resolve({ fence: { key: '/election/sole', createRevision: 1 } }) };

function code(c: string) {
  return (e: unknown): boolean => e instanceof MeshError && e.code === c;
}

async function eventually(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function storeCompliance(name: string, factory: () => Promise<Store>, fencing: Fencing = singleWriter): void {
  describe(`Store compliance: ${name}`, () => {
    const withStore = (title: string, fn: (s: Store) => Promise<void>): void => {
      test(title, async () => {
        const s = await factory();
        try {
          await fn(s);
        } finally {
          await s.close();
        }
      });
    };

    withStore('get of a missing key is undefined; put then get round-trips value and revision', async (s) => {
      assert.equal(await s.get('nodes/a'), undefined);
      const value = { id: 'a', labels: { zone: 'é' }, n: 1.5, list: [1, 'x', null], ok: true };
      const rev = await s.put('nodes/a', value);
      assert.ok(rev > 0);
      assert.deepEqual(await s.get('nodes/a'), { key: 'nodes/a', value, revision: rev });
      assert.equal(await s.revision(), rev);
    });

    withStore('revisions grow store-wide; overwrite moves the key revision', async (s) => {
      const r1 = await s.put('nodes/a', 1);
      const r2 = await s.put('nodes/b', 2);
      const r3 = await s.put('nodes/a', 3);
      assert.ok(r1 < r2 && r2 < r3);
      assert.equal((await s.get('nodes/a'))!.revision, r3);
      assert.equal((await s.get('nodes/b'))!.revision, r2);
    });

    withStore('returned values are copies', async (s) => {
      await s.put('cluster/x', { a: [1] });
      const got = (await s.get<{ a: number[] }>('cluster/x'))!;
      got.value.a.push(2);
      assert.deepEqual((await s.get('cluster/x'))!.value, { a: [1] });
    });

    withStore('delete reports whether the key existed', async (s) => {
      await s.put('tasks/t1', 'x');
      assert.equal(await s.delete('tasks/t1'), true);
      assert.equal(await s.delete('tasks/t1'), false);
      assert.equal(await s.get('tasks/t1'), undefined);
    });

    withStore('list(prefix) is sorted by key and exact on the prefix', async (s) => {
      for (const k of ['nodes/c', 'nodes/a', 'nodes/b', 'networks/x', 'nodesx/y', 'services/s']) await s.put(k, k);
      assert.deepEqual((await s.list('nodes/')).map((x) => x.key), ['nodes/a', 'nodes/b', 'nodes/c']);
      assert.deepEqual((await s.list('n')).map((x) => x.key), ['networks/x', 'nodes/a', 'nodes/b', 'nodes/c', 'nodesx/y']);
      assert.equal((await s.list('')).length, 6);
      assert.deepEqual(await s.list('tasks/'), []);
    });

    withStore('compareAndPut: 0 means create-only; a stale revision is a conflict with details', async (s) => {
      const r1 = await s.compareAndPut('services/web', { v: 1 }, 0);
      await assert.rejects(s.compareAndPut('services/web', { v: 2 }, 0), (e: unknown) => {
        assert.ok(e instanceof MeshError && e.code === 'MESHD_STORE_CONFLICT' && e.kind === 'Conflict');
        assert.deepEqual(e.details, { key: 'services/web', expected: 0, actual: r1 });
        return true;
      });
      const r2 = await s.compareAndPut('services/web', { v: 2 }, r1);
      await assert.rejects(s.compareAndPut('services/web', { v: 3 }, r1), code('MESHD_STORE_CONFLICT'));
      assert.deepEqual((await s.get('services/web'))!, { key: 'services/web', value: { v: 2 }, revision: r2 });
      await assert.rejects(s.compareAndPut('services/absent', 1, 5), code('MESHD_STORE_CONFLICT'));
    });

    withStore('concurrent compareAndPut on one revision: exactly one wins', async (s) => {
      const r0 = await s.put('cluster/counter', 0);
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.compareAndPut('cluster/counter', i + 1, r0)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(code('MESHD_STORE_CONFLICT')(r.reason));
    });

    withStore('txn applies all ops at one revision, or none when any condition fails', async (s) => {
      const ra = await s.put('nodes/a', 'a0');
      await s.put('nodes/gone', 'g');
      const rev = await s.txn([
        { op: 'put', key: 'nodes/a', value: 'a1', ifRevision: ra },
        { op: 'put', key: 'nodes/b', value: 'b1', ifRevision: 0 },
        { op: 'delete', key: 'nodes/gone' },
      ]);
      assert.equal((await s.get('nodes/a'))!.revision, rev);
      assert.equal((await s.get('nodes/b'))!.revision, rev);
      assert.equal(await s.get('nodes/gone'), undefined);
      const before = await s.list('');
      const revBefore = await s.revision();
      await assert.rejects(s.txn([
        { op: 'put', key: 'nodes/c', value: 'c' },
        { op: 'put', key: 'nodes/a', value: 'stale', ifRevision: ra },
      ]), code('MESHD_STORE_CONFLICT'));
      assert.deepEqual(await s.list(''), before);
      assert.equal(await s.revision(), revBefore);
    });

    withStore('bad keys, ops and values are MESHD_BAD_ARGUMENT and change nothing', async (s) => {
      const rev0 = await s.revision();
      for (const k of ['', 'nokey', '/abs', 'nodes/', 'Nodes/a', 'nodes/a b', 'nodes/\u00e9', `nodes/${'x'.repeat(600)}`]) {
        await assert.rejects(s.put(k, 1), code('MESHD_BAD_ARGUMENT'), k);
      }
      await assert.rejects(s.put('nodes/a', undefined), code('MESHD_BAD_ARGUMENT'));
      await assert.rejects(s.put('nodes/a', 'x'.repeat((1 << 20) + 1)), code('MESHD_BAD_ARGUMENT'));
      await assert.rejects(s.txn([]), code('MESHD_BAD_ARGUMENT'));
      await assert.rejects(s.txn([{ op: 'put', key: 'nodes/a', value: 1 }, { op: 'delete', key: 'nodes/a' }]), code('MESHD_BAD_ARGUMENT'));
      await assert.rejects(s.compareAndPut('nodes/a', 1, -1), code('MESHD_BAD_ARGUMENT'));
      await assert.rejects(s.compareAndPut('nodes/a', 1, Number.NaN), code('MESHD_BAD_ARGUMENT'));
      assert.deepEqual(await s.list(''), []);
      assert.equal(await s.revision(), rev0);
    });

    withStore('watch(prefix) delivers puts and deletes under the prefix in revision order; unwatch stops it', async (s) => {
      const seen: WatchEvent[] = [];
      const stop = await s.watch('tasks/', (ev) => seen.push(ev));
      const r1 = await s.put('tasks/1', { state: 'new' });
      await s.put('nodes/n', 'ignored');
      const r2 = await s.txn([{ op: 'put', key: 'tasks/2', value: 'b' }, { op: 'put', key: 'tasks/1', value: { state: 'running' } }]);
      const r3 = await s.put('tasks/3', 'c');
      await s.delete('tasks/2');
      await eventually(() => seen.length >= 5);
      assert.deepEqual(seen.slice(0, 3), [
        { type: 'put', key: 'tasks/1', value: { state: 'new' }, revision: r1 },
        { type: 'put', key: 'tasks/2', value: 'b', revision: r2 },
        { type: 'put', key: 'tasks/1', value: { state: 'running' }, revision: r2 },
      ]);
      assert.deepEqual(seen[3], { type: 'put', key: 'tasks/3', value: 'c', revision: r3 });
      assert.equal(seen[4]!.type, 'delete');
      assert.equal(seen[4]!.key, 'tasks/2');
      assert.ok(seen[4]!.revision > r3);
      await stop();
      await s.put('tasks/4', 'd');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(seen.length, 5);
    });

    withStore('a fenced txn commits while its writer leads; a deposed writer\'s txn is MESHD_NOT_LEADER and changes nothing', async (s) => {
      const { fence, depose } = await fencing.hold(s);
      const r1 = await s.txn([{ op: 'put', key: 'services/a', value: 1 }, { op: 'put', key: 'tasks/t', value: 2, ifRevision: 0 }], { fence });
      assert.equal((await s.get('services/a'))!.revision, r1);
      assert.equal(await s.revision(), r1);
      // A malformed fence is a caller bug on every backend.
      for (const bad of [{ key: '', createRevision: 1 }, { key: '/e/x', createRevision: 0 }, { key: '/e/x', createRevision: 1.5 }, { key: 1, createRevision: 1 }]) {
        await assert.rejects(s.txn([{ op: 'put', key: 'services/b', value: 1 }], { fence: bad as unknown as LeaderFence }), code('MESHD_BAD_ARGUMENT'));
      }
      assert.equal(await s.get('services/b'), undefined);
      if (!depose) return;
      await depose();
      const before = await s.revision();
      const deposed = (e: unknown): boolean => code('MESHD_NOT_LEADER')(e) && (e as MeshError).details?.reason === 'deposed';
      // Refused as deposed even when the op's own condition holds, or fails too (the fence is checked first).
      await assert.rejects(s.txn([{ op: 'put', key: 'services/a', value: 9, ifRevision: r1 }, { op: 'delete', key: 'tasks/t' }], { fence }), deposed);
      await assert.rejects(s.txn([{ op: 'put', key: 'services/a', value: 9, ifRevision: r1 + 100 }], { fence }), deposed);
      assert.deepEqual(await s.get('services/a'), { key: 'services/a', value: 1, revision: r1 });
      assert.equal((await s.get('tasks/t'))?.value, 2);
      assert.equal(await s.revision(), before);
      // Unfenced writes are not affected.
      await s.put('services/a', 3);
      assert.equal((await s.get('services/a'))!.value, 3);
    });

    withStore('a closed store refuses calls with MESHD_STORE_UNAVAILABLE', async (s) => {
      await s.close();
      await assert.rejects(s.get('nodes/a'), code('MESHD_STORE_UNAVAILABLE'));
      await assert.rejects(s.put('nodes/a', 1), code('MESHD_STORE_UNAVAILABLE'));
    });
  });
}
