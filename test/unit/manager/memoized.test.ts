import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoized } from '../../../src/manager/control/routes.js';
import type { ControlHost, Memo } from '../../../src/manager/control/host.js';
import type { ControlState } from '../../../src/manager/control/state.js';

/** A host whose store revision the test moves; serialize counts its turns and loads at `rev`. */
function host(): { cp: ControlHost; turns: () => number; write: () => void; writeDuringLoad: () => void } {
  let rev = 10;
  let turns = 0;
  let racing = false;
  const cp = {
    o: {} as ControlHost['o'], updaters: new Map(), now: () => 0, kick: () => undefined,
    memos: new Map<string, Memo>(),
    storeRevision: async () => rev,
    serialize: async <T>(fn: (st: ControlState) => T | Promise<T>): Promise<T> => {
      turns++;
      const loadedRevision = rev;
      if (racing) {
        rev++; // a write lands between the revision read and the lists: the state is newer than it says
        racing = false;
      }
      return fn({ loadedRevision } as ControlState);
    },
  } satisfies ControlHost;
  return { cp, turns: () => turns, write: () => void rev++, writeDuringLoad: () => void (racing = true) };
}

test('memoized: the same input on an unchanged store is answered without a turn; any write or other input computes again', async () => {
  const h = host();
  let computed = 0;
  const fn = () => ({ n: ++computed });
  assert.deepEqual(await memoized(h.cp, 'status:a', 'r1', fn), { n: 1 });
  assert.deepEqual(await memoized(h.cp, 'status:a', 'r1', fn), { n: 1 }, 'served from the memo');
  assert.equal(h.turns(), 1);
  assert.deepEqual(await memoized(h.cp, 'status:a', 'r2', fn), { n: 2 }, 'another report');
  assert.deepEqual(await memoized(h.cp, 'status:b', 'r2', fn), { n: 3 }, 'another node');
  h.write();
  assert.deepEqual(await memoized(h.cp, 'status:a', 'r2', fn), { n: 4 }, 'the store moved');
  assert.deepEqual(await memoized(h.cp, 'status:a', 'r2', fn), { n: 4 });
  assert.equal(h.turns(), 4);
});

test('memoized: a write racing the load leaves the memo older than the store — computed once more, never served stale', async () => {
  const h = host();
  let computed = 0;
  const fn = () => ++computed;
  h.writeDuringLoad();
  assert.equal(await memoized(h.cp, 'ingress:a', '', fn), 1);
  assert.equal(await memoized(h.cp, 'ingress:a', '', fn), 2, 'the memo kept the revision read before the load');
  assert.equal(await memoized(h.cp, 'ingress:a', '', fn), 2);
});

test('memoized: a computation that throws leaves no memo', async () => {
  const h = host();
  await assert.rejects(memoized(h.cp, 'status:a', 'r', () => {
    throw new Error('refused');
  }), /refused/);
  assert.equal(h.cp.memos.size, 0);
  assert.equal(await memoized(h.cp, 'status:a', 'r', () => 7), 7);
});
