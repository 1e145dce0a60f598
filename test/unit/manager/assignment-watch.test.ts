/**
 * The dispatcher's assignment watch (src/manager/control/assignment-watch.ts): the pure pieces as
 * tables, the wake-up registry on a MemoryStore, and the route end to end on the in-process manager
 * rig over real mTLS (a worker's long-poll answers when a commit changes its list, not before, and not
 * for another node's change).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Assignment } from '../../../src/core/assignments.js';
import { MemoryStore } from '../../../src/adapters/store/memory.js';
import { AssignmentWatch, MAX_WAIT_MS, parseWaitMs, wakeTarget } from '../../../src/manager/control/assignment-watch.js';
import { meshCode } from '../../helpers/errors.js';
import { startManagerRig, type ManagerRig } from '../../helpers/manager-rig.js';

describe('assignment watch: pure pieces', () => {
  test('wakeTarget: whose list a committed change may touch', () => {
    const rows: Array<[Parameters<typeof wakeTarget>[0], string | undefined]> = [
      [{ type: 'put', key: 'tasks/t1', value: { id: 't1', nodeId: 'n2' } }, 'n2'],
      [{ type: 'put', key: 'tasks/t1', value: { id: 't1' } }, undefined], // not scheduled yet
      [{ type: 'put', key: 'tasks/t1', value: { id: 't1', nodeId: 7 } }, undefined],
      [{ type: 'delete', key: 'tasks/t1' }, '*'], // a delete does not say whose it was
      [{ type: 'put', key: 'services/s1', value: {} }, '*'],
      [{ type: 'delete', key: 'networks/x' }, '*'],
      [{ type: 'put', key: 'nodes/n3', value: {} }, 'n3'],
      [{ type: 'put', key: 'ingress-sbox/n3', value: {} }, undefined],
      [{ type: 'put', key: 'settings', value: {} }, undefined],
    ];
    for (const [ev, want] of rows) assert.equal(wakeTarget(ev), want, JSON.stringify(ev));
  });

  test('parseWaitMs: absent is 0, capped at MAX_WAIT_MS, anything else refused', () => {
    assert.equal(parseWaitMs(null), 0);
    assert.equal(parseWaitMs('0'), 0);
    assert.equal(parseWaitMs('2500'), 2500);
    assert.equal(parseWaitMs('999999'), MAX_WAIT_MS);
    for (const bad of ['', '-1', '1.5', '1e3', 'abc', '9999999', ' 5']) assert.throws(() => parseWaitMs(bad), meshCode('MESHD_BAD_ARGUMENT'), bad);
  });
});

describe('assignment watch: wake-ups from the store', () => {
  test('a task put naming the node wakes it; another node\'s does not; a service put wakes everyone', async () => {
    const store = new MemoryStore();
    const errors: unknown[] = [];
    const w = new AssignmentWatch(() => store, (e) => errors.push(e));
    const a = await w.arm('n1');
    const b = await w.arm('n2');
    assert.equal(w.waiting(), 2);
    await store.put('tasks/t1', { id: 't1', nodeId: 'n2' });
    assert.equal(await a.until(50), false, 'n1 woken by n2\'s task');
    assert.equal(await b.until(5000), true, 'n2 not woken by its task (fired before until: must still count)');
    const c = await w.arm('n1');
    const d = await w.arm('n3');
    const both = Promise.all([c.until(5000), d.until(5000)]);
    await store.put('services/s1', { id: 's1' });
    assert.deepEqual(await both, [true, true]);
    assert.equal(w.waiting(), 0, 'every wait unregistered');
    await w.stop();
    assert.deepEqual(errors, []);
  });

  test('stop answers a waiting request at once; cancel unregisters', async () => {
    const store = new MemoryStore();
    const w = new AssignmentWatch(() => store, () => undefined);
    const x = await w.arm('n1');
    x.cancel();
    assert.equal(w.waiting(), 0);
    const y = await w.arm('n1');
    const t0 = Date.now();
    const p = y.until(20_000);
    await w.stop();
    assert.equal(await p, true);
    assert.ok(Date.now() - t0 < 2000);
    // after stop a new wait never blocks
    assert.equal(await (await w.arm('n1')).until(20_000), false);
  });
});

describe('assignment watch: the route over mTLS', () => {
  const root = mkdtempSync(join(tmpdir(), 'meshd-aw-'));
  let rig: ManagerRig;
  type Answer = { token: string; assignments: Assignment[] };
  const watch = (n: string, q: string) => rig.clients[n]!.call<Answer>('GET', `/v1/dispatcher/assignments/watch?${q}`, undefined, { timeoutMs: 30_000 });

  before(async () => {
    rig = await startManagerRig({ root, workers: ['w2'] });
    await rig.clients.m1!.call('POST', '/v1/networks', { name: 'app', subnet: '10.20.0.0/24' });
  });
  after(async () => {
    await rig?.close();
  });

  test('no token: answered at once; a known token waits until a commit changes the list', async () => {
    const first = await watch('w2', 'waitMs=0');
    assert.deepEqual(first.assignments, []);
    assert.match(first.token, /^[A-Za-z0-9_-]{22}$/);
    // unchanged list, short wait: the same token after the wait
    const t0 = Date.now();
    const same = await watch('w2', `known=${first.token}&waitMs=300`);
    assert.equal(same.token, first.token);
    assert.ok(Date.now() - t0 >= 250, `answered after ${Date.now() - t0} ms, before its wait`);
    // a waiting request answers when a task lands on w2 (one replica per node: 2 replicas → one on w2)
    const waiting = watch('w2', `known=${first.token}&waitMs=20000`);
    const t1 = Date.now();
    await rig.clients.m1!.call('POST', '/v1/services', { name: 'web', image: 'whoami', mode: { replicated: { replicas: 2 } }, networks: ['app'] });
    const changed = await waiting;
    const took = Date.now() - t1;
    assert.notEqual(changed.token, first.token);
    assert.equal(changed.assignments.length, 1, JSON.stringify(changed.assignments));
    assert.equal(changed.assignments[0]!.task.serviceName, 'web');
    assert.ok(took < 5000, `the change took ${took} ms to reach the waiting node`);
    // a stale token from any manager: answered at once with the current list
    const again = await watch('w2', `known=${first.token}&waitMs=20000`);
    assert.equal(again.token, changed.token);
  });

  test('bad waitMs is a 400 with a stable code, the plain list route still answers', async () => {
    await assert.rejects(watch('w2', 'waitMs=-5'), meshCode('MESHD_BAD_ARGUMENT'));
    const list = await rig.clients.w2!.call<Assignment[]>('GET', '/v1/dispatcher/assignments');
    assert.equal(list.length, 1);
  });
});
