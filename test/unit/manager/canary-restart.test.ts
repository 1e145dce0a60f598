/**
 * A held canary survives a manager loss (issue 19 §3, ARCHITECTURE reliability case 16), on the
 * in-process manager over real mTLS (test/helpers/manager-rig.ts, MemoryStore kept across the
 * restart). The test plays the nodes' dispatcher part. Before the fix a new manager dropped the
 * old task sharing the canary's slot and left the weights on; now it resumes the canary held:
 * the same four tasks keep running with the same LB weights through many reconcile steps, and
 * `--canary-complete` (after a process restart) or `service rollback` (after a leader change)
 * still finish it. The record stores the share and slots only; the weights are derived (a record
 * written by older code with `weights` loads, and the stored copy is ignored).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Assignment } from '../../../src/core/assignments.js';
import { Manager } from '../../../src/manager/manager.js';
import { ManagerClient } from '../../../src/manager/client.js';
import { ControlPlane } from '../../../src/manager/control/index.js';
import { waitFor } from '../../helpers/lab.js';
import { startManagerRig, type ManagerRig } from '../../helpers/manager-rig.js';

const root = mkdtempSync(join(tmpdir(), 'meshd-canr-'));
let rig: ManagerRig;
let mgr: Manager;
let cp: ControlPlane;
let clients: Record<string, ManagerClient> = {};

interface TaskV { id: string; desiredState: string; state: string; specVersion: number; slot: number | null }
interface SvcV { id: string; version: number; spec: Record<string, unknown>; update: { state: string; message: string } | null; canary: { percent: number; count: number; slots?: number[]; weights?: { old: number; canary: number } } | null }

/** Every node runs what is assigned and stops what is to stop; returns each task's LB weight. */
async function nodesRun(): Promise<Map<string, number | undefined>> {
  const weights = new Map<string, number | undefined>();
  for (const c of Object.values(clients)) {
    const list = await c.call<Assignment[]>('GET', '/v1/dispatcher/assignments');
    for (const a of list) if (a.desiredState === 'running') weights.set(a.task.id, a.lb?.weight);
    await c.call('POST', '/v1/dispatcher/status', { tasks: list.map((a) => ({ id: a.task.id, state: a.desiredState === 'running' ? 'running' : 'stopped', error: null })) });
  }
  return weights;
}
const admin = (): ManagerClient => clients.m1!;
const svc = (name: string): Promise<SvcV> => admin().call<SvcV>('GET', `/v1/services/${name}`);
async function live(name: string): Promise<TaskV[]> {
  return (await admin().call<TaskV[]>('GET', `/v1/tasks?service=${name}`)).filter((t) => t.desiredState !== 'shutdown');
}
/** The service record as the store holds it (not the API's view). */
async function stored(id: string): Promise<Record<string, unknown> & { canary?: unknown }> {
  return (await rig.store.get<Record<string, unknown> & { canary?: unknown }>(`services/${id}`))!.value;
}
const ids = (ts: TaskV[]): string[] => ts.map((t) => `${t.id}@${t.slot}:v${t.specVersion}`).sort();

/**
 * Node rounds `until` allows: a round is every node reporting once, then one reconcile step (it schedules what
 * the round started). The rest of a held 3-slot canary takes at most 4 (each stop-first slot: its old task
 * stops, then its new one runs); 12 leaves room and still fails a machine that does not move, at any load.
 * The bound is work, not wall time: at load ~11 one round took over 2 s (6 mTLS calls through the serialized
 * control plane), so an 8 s wall-clock bound on 4 rounds failed a correct update by chance (session 9).
 */
const MAX_ROUNDS = 12;

/**
 * Drives the nodes until `name` is in update state `state` (null: never updated) with `n` running live tasks,
 * in at most MAX_ROUNDS rounds. Otherwise fails saying what it waited on: the live tasks with their states
 * (`id@slot:vN state/desired`), each machine's progress, and how long each round took.
 */
async function until(name: string, state: string | null, n: number): Promise<TaskV[]> {
  const rounds: number[] = [];
  for (;;) {
    const t0 = Date.now();
    await nodesRun();
    const [s, ts] = [await svc(name), await live(name)];
    rounds.push(Date.now() - t0);
    if ((s.update?.state ?? null) === state && ts.length === n && ts.every((t) => t.state === 'running')) return ts;
    if (rounds.length >= MAX_ROUNDS) {
      assert.fail(`${name}: not in update state ${state} with ${n} running tasks after ${rounds.length} node rounds (ms: ${rounds.join(',')}): ${JSON.stringify({
        svc: s.update, tasks: ts.map((t) => `${t.id}@${t.slot}:v${t.specVersion} ${t.state}/${t.desiredState}`).sort(), machines: [...cp.updaters.values()].map((u) => u.progress),
      })}`);
    }
    const from = cp.stepCount;
    // A hang guard for the control loop (it steps every 50 ms), not the update's bound.
    await waitFor(`a reconcile step after ${from}`, () => cp.stepCount > from, 8000, 10, () => `stepCount ${cp.stepCount}`);
  }
}

/** Waits for `k` more reconcile steps of the current control plane, playing the nodes meanwhile. */
async function steps(k: number): Promise<void> {
  const from = cp.stepCount;
  await waitFor(`${k} reconcile steps after ${from}`, async () => {
    await nodesRun();
    return cp.stepCount >= from + k;
  }, 8000, 50, () => `stepCount ${cp.stepCount}`);
}

/** The manager process dies and starts again on the same store (new API port, no machines in memory). */
async function restartManager(): Promise<void> {
  cp.stop();
  await mgr.close();
  mgr = await Manager.open({ dataDir: join(root, 'm1'), store: rig.store });
  cp = new ControlPlane({ manager: mgr, liveness: () => 'alive', tickMs: 50, absentGraceMs: 60_000 });
  cp.register();
  const addr = `127.0.0.1:${(await mgr.listen('127.0.0.1', 0)).port}`;
  await cp.start();
  clients = Object.fromEntries(Object.entries(rig.ids).map(([n, id]) => [n, new ManagerClient(addr, { caPem: id.caPem, certPem: id.certPem, keyPem: id.keyPem })]));
}

/** Creates a 3-replica service, runs it, starts a 10 % canary and waits until it is held. */
async function heldCanary(name: string, extra: Record<string, unknown> = {}): Promise<{ old: TaskV[]; held: TaskV[]; weights: Map<string, number | undefined> }> {
  await admin().call('POST', '/v1/services', { name, image: 'whoami', mode: { replicated: { replicas: 3 } }, updateConfig: { parallelism: 1, delayMs: 0, monitorMs: 0 }, ...extra });
  const old = await until(name, null, 3);
  const cur = await svc(name);
  await admin().call('POST', `/v1/services/${cur.id}/update`, { spec: { ...cur.spec, env: { V: '2' } }, version: cur.version, canary: 10 });
  const held = await until(name, 'canary', 4);
  const s = await svc(name);
  assert.deepEqual(s.canary, { percent: 10, count: 1, slots: [1], weights: { old: 3, canary: 1 } }, 'inspect shows the slots and the derived weights');
  assert.deepEqual((await stored(s.id)).canary, { percent: 10, count: 1, slots: [1] }, 'the record stores only what cannot be derived');
  const all = await nodesRun();
  const weights = new Map(held.map((t) => [t.id, all.get(t.id)]));
  return { old, held, weights };
}

/** The canary is exactly as before: same tasks, all running, same weights, state canary. */
async function assertStillHeld(name: string, before: { held: TaskV[]; weights: Map<string, number | undefined> }): Promise<void> {
  await steps(10);
  const s = await svc(name);
  assert.equal(s.update?.state, 'canary', JSON.stringify(s.update));
  assert.deepEqual(ids(await live(name)), ids(before.held), 'the same old and canary tasks live');
  const w = await nodesRun();
  for (const t of before.held) assert.equal(w.get(t.id), before.weights.get(t.id), `weight of ${t.id}@${t.slot}:v${t.specVersion}`);
  assert.deepEqual([...before.weights.values()].sort(), [1, 3, 3, 3], 'three old tasks weigh 3, the canary 1 (10 %)');
}

before(async () => {
  rig = await startManagerRig({ root, workers: ['w2', 'w3'] });
  ({ mgr, cp } = rig);
  clients = { ...rig.clients };
});

after(async () => {
  cp?.stop();
  await mgr?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('canary across a manager loss', () => {
  test('manager restart while held: resumed held, then --canary-complete rolls the rest', async () => {
    const before = await heldCanary('web');
    await restartManager();
    await assertStillHeld('web', before);
    const s = await svc('web');
    await admin().call('POST', `/v1/services/${s.id}/canary-complete`, {});
    const done = await until('web', 'completed', 3);
    assert.ok(done.every((t) => t.specVersion === s.version), ids(done).join(' '));
    const canaryTask = before.held.find((t) => t.specVersion === s.version)!;
    assert.ok(done.some((t) => t.id === canaryTask.id), 'the canary task itself took its slot');
    assert.equal((await svc('web')).canary, null);
    const w = await nodesRun();
    assert.deepEqual([...w.entries()].filter(([id]) => done.some((t) => t.id === id)).map(([, x]) => x), [undefined, undefined, undefined], 'no weights left');
  });

  test('leader change while held: resumed held, then rollback removes the canary task only', async () => {
    const before = await heldCanary('api');
    cp.leadershipChanged(false);
    cp.leadershipChanged(true);
    await assertStillHeld('api', before);
    const s = await svc('api');
    await admin().call('POST', `/v1/services/${s.id}/rollback`, {});
    const back = await until('api', 'rollback_completed', 3);
    assert.deepEqual(ids(back), ids(before.old), 'the old tasks never stopped');
    assert.equal((await svc('api')).canary, null);
  });

  test('an old task that fails while held is restarted on the old spec: still one canary, same weights', async () => {
    const before = await heldCanary('rs', { restartPolicy: { delayMs: 0 } });
    const s = await svc('rs');
    const victim = before.held.find((t) => t.slot === 2)!;
    // Its node reports it failed (the node whose assignments hold it).
    for (const c of Object.values(clients)) {
      const list = await c.call<Assignment[]>('GET', '/v1/dispatcher/assignments');
      if (list.some((a) => a.task.id === victim.id)) await c.call('POST', '/v1/dispatcher/status', { tasks: [{ id: victim.id, state: 'failed', error: 'test: the old task died' }] });
    }
    const now = (await waitFor('rs: slot 2 runs a replacement of the failed old task', async () => {
      await nodesRun();
      const ts = await live('rs');
      return ts.length === 4 && ts.every((t) => t.state === 'running') && !ts.some((t) => t.id === victim.id) ? ts : false;
    }, 8000, 50, async () => ids(await live('rs')).join(' '))).value;
    const repl = now.find((t) => t.slot === 2)!;
    assert.equal(repl.specVersion, victim.specVersion, `the replacement runs the old spec version: ${ids(now).join(' ')}`);
    assert.equal(now.filter((t) => t.specVersion === s.version).length, 1, 'one canary task, as before');
    assert.equal((await svc('rs')).update?.state, 'canary');
    const w = await nodesRun();
    assert.deepEqual(now.map((t) => w.get(t.id)).sort(), [1, 3, 3, 3], 'the replacement weighs as an old task');
  });

  test('a record written by older code (with `weights`) loads: the stored copy is ignored, the formula weighs', async () => {
    const before = await heldCanary('old');
    const s = await svc('old');
    // 6r's code stored `weights` beside the slots. Wrong numbers on purpose: were they still read,
    // the nodes would get 99 / 7 instead of the formula's 3 / 1.
    const rec = await stored(s.id);
    await rig.store.put(`services/${s.id}`, { ...rec, canary: { ...(rec.canary as object), weights: { old: 99, canary: 7 } } });
    await restartManager();
    await assertStillHeld('old', before);
    assert.deepEqual((await svc('old')).canary, { percent: 10, count: 1, slots: [1], weights: { old: 3, canary: 1 } });
    // The resumed machine wrote its state into the record: the loaded copy had the field dropped.
    assert.deepEqual((await stored(s.id)).canary, { percent: 10, count: 1, slots: [1] }, 'rewritten without the stale weights');
    await admin().call('POST', `/v1/services/${s.id}/canary-complete`, {});
    await until('old', 'completed', 3);
    assert.equal((await stored(s.id)).canary, undefined, 'the next write keeps no canary (and so no weights)');
  });
});
