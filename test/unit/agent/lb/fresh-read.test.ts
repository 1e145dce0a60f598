/**
 * FreshRead (src/agent/lb/fresh-read.ts): status requests and drift checks share kernel read-backs
 * without piling up, and nobody gets a read that started before it asked (issue 14: abandoned status
 * requests piled up on a slow host until the agent stopped answering).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FreshRead } from '../../../../src/agent/lb/fresh-read.js';

function reader(): { fr: FreshRead<number>; finish: (i: number) => void; pending: () => number } {
  const waiting: Array<() => void> = [];
  let n = 0;
  const fr = new FreshRead(() => {
    const id = ++n;
    return new Promise<number>((resolve) => waiting[id] = () => resolve(id));
  });
  return { fr, finish: (i) => waiting[i]!(), pending: () => n };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('at most one read runs and one waits; callers during a read get the NEXT read, shared', async () => {
  const { fr, finish, pending } = reader();
  const a = fr.get();
  const b = fr.get();
  const c = fr.get();
  await tick();
  assert.equal(pending(), 1, 'b and c wait instead of starting their own read');
  finish(1);
  assert.equal(await a, 1);
  await tick();
  assert.equal(pending(), 2, 'the queued read starts when the running one ends');
  const d = fr.get();
  finish(2);
  assert.deepEqual(await Promise.all([b, c]), [2, 2], 'b and c share the read that started after they asked');
  await tick();
  assert.equal(pending(), 3);
  finish(3);
  assert.equal(await d, 3, 'd asked while read 2 ran: it gets read 3, not read 2');
  assert.equal(fr.started, 3);
});

test('a failed read does not wedge the queue', async () => {
  let n = 0;
  const fr = new FreshRead(async () => {
    n++;
    if (n === 1) throw new Error('exec failed');
    return n;
  });
  const a = fr.get();
  const b = fr.get();
  await assert.rejects(a, /exec failed/);
  assert.equal(await b, 2);
  assert.equal(await fr.get(), 3);
});
