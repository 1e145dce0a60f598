/**
 * An OLD task that dies while a canary is held (issue 19 §3; the gap named in session 6): the
 * orchestrator replaces it with its own spec version, not the canary's, so the canary count and
 * its share of connections stay what was asked. `--canary-complete` then rolls the replacement
 * like any old slot; a rollback keeps it. Simulated time: reconcile + scheduler + the update
 * machine in test/unit/orchestrator/sim.ts, fed as the manager's engine feeds them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RollingUpdate } from '../../../src/core/orchestrator/update.js';
import type { Task } from '../../../src/core/spec/types.js';
import { idGen, node, spec } from './fixtures.js';
import { Sim } from './sim.js';

const cfg = { parallelism: 1, delayMs: 0, monitorMs: 0 };
const restart = { condition: 'any' as const, delayMs: 5_000 };
const v1 = spec({ image: 'app:1', mode: { replicated: { replicas: 3 } }, updateConfig: cfg, rollbackConfig: cfg, restartPolicy: restart });
const v2 = spec({ image: 'app:2', mode: { replicated: { replicas: 3 } }, updateConfig: cfg, rollbackConfig: cfg, restartPolicy: restart });

const show = (ts: Task[]): string[] => ts.map((t) => `${t.slot}:v${t.specVersion}:${t.spec.image}:${t.state}`).sort();
const bySlot = (sim: Sim, slot: number, version: number): Task | undefined => sim.live('web').find((t) => t.slot === slot && t.specVersion === version);

/** Three old tasks running, then a 10 % canary (one task, slot 1) held; `canaryHeld` as the manager derives it. */
function heldCanary(): { sim: Sim; ru: RollingUpdate; old: Task[] } {
  const sim = new Sim([node('n1'), node('n2'), node('n3')], [{ id: 'web', version: 1, spec: v1 }]);
  sim.settle();
  const old = sim.running('web');
  assert.deepEqual(show(old), ['1:v1:app:1:running', '2:v1:app:1:running', '3:v1:app:1:running']);
  sim.services.set('web', { id: 'web', version: 2, spec: v2, previous: { version: 1, spec: v1 } });
  const ru = new RollingUpdate({ serviceId: 'web', from: { version: 1, spec: v1 }, to: { version: 2, spec: v2 }, tasks: [...sim.tasks.values()], now: sim.clock.now(), newId: idGen('u'), canary: { count: 1 } });
  sim.updating.add('web');
  sim.canaryHeld.add('web');
  sim.updaters.set('web', ru);
  sim.settle();
  assert.equal(ru.state, 'canary');
  assert.deepEqual(show(sim.running('web')), ['1:v1:app:1:running', '1:v2:app:2:running', '2:v1:app:1:running', '3:v1:app:1:running']);
  return { sim, ru, old };
}

/** Old tasks of slot 1 (beside the canary) and slot 2 die; after the restart delay their replacements run. */
function oldTasksDie(sim: Sim, old: Task[]): Task[] {
  for (const t of old.filter((o) => o.slot === 1 || o.slot === 2)) sim.setTask(t.id, 'failed');
  sim.settle();
  sim.clock.advance(5_000);
  sim.settle();
  const repl = [1, 2].map((s) => bySlot(sim, s, 1)!);
  assert.ok(repl.every((t) => t && !old.some((o) => o.id === t.id)), 'both slots have a new task');
  return repl;
}

describe('an old task that dies while the canary is held', () => {
  test('is replaced with the old spec: the canary count and the state stay', () => {
    const { sim, ru, old } = heldCanary();
    const repl = oldTasksDie(sim, old);
    assert.deepEqual(show(sim.running('web')), ['1:v1:app:1:running', '1:v2:app:2:running', '2:v1:app:1:running', '3:v1:app:1:running'],
      'the replacements run app:1 (version 1); one canary task, as asked');
    assert.ok(repl.every((t) => t.restarts?.length === 1), 'they are restarts (the policy counted them)');
    assert.equal(sim.running('web').filter((t) => t.specVersion === 2).length, 1);
    assert.equal(ru.state, 'canary');
    sim.clock.advance(3_600_000);
    sim.settle();
    assert.equal(sim.running('web').length, 4, 'an hour later: still held, nothing moved');
  });

  test('--canary-complete rolls the replacements like every old slot', () => {
    const { sim, ru, old } = heldCanary();
    const repl = oldTasksDie(sim, old);
    sim.canaryHeld.delete('web'); // the route clears the record's canary with the promote
    assert.ok(ru.promote(sim.clock.now()));
    sim.settle();
    assert.equal(ru.state, 'completed');
    assert.deepEqual(show(sim.live('web')), ['1:v2:app:2:running', '2:v2:app:2:running', '3:v2:app:2:running']);
    assert.ok(repl.every((t) => sim.tasks.get(t.id)!.desiredState === 'shutdown'), 'the replacements were rolled');
  });

  test('a rollback keeps the replacements (they already run the old spec); only the canary task goes', () => {
    const { sim, ru, old } = heldCanary();
    const repl = oldTasksDie(sim, old);
    sim.canaryHeld.delete('web');
    ru.rollback(sim.clock.now());
    sim.settle();
    assert.equal(ru.state, 'rollback_completed');
    assert.deepEqual(show(sim.live('web')), ['1:v1:app:1:running', '2:v1:app:1:running', '3:v1:app:1:running']);
    const liveIds = sim.live('web').map((t) => t.id).sort();
    assert.deepEqual(liveIds, [...repl.map((t) => t.id), old.find((o) => o.slot === 3)!.id].sort(), 'the replacements and o3 keep serving');
  });

  test('the canary task itself dying is replaced with the canary spec (still one canary)', () => {
    const { sim, ru } = heldCanary();
    const c = bySlot(sim, 1, 2)!;
    sim.setTask(c.id, 'failed');
    sim.clock.advance(5_000);
    sim.settle();
    const now = bySlot(sim, 1, 2);
    assert.ok(now && now.id !== c.id && now.spec.image === 'app:2' && now.state === 'running', JSON.stringify(now));
    assert.equal(sim.running('web').length, 4);
    assert.equal(ru.state, 'canary');
  });
});
