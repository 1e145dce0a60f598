import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Action, UpdateState } from '../../../src/core/orchestrator/actions.js';
import { reconcile } from '../../../src/core/orchestrator/reconcile.js';
import { RollingUpdate } from '../../../src/core/orchestrator/update.js';
import { eventsForTaskChange, replacementEvents } from '../../../src/core/orchestrator/events.js';
import type { UpdateEvent } from '../../../src/core/orchestrator/update.js';
import type { Service, Task, TaskState } from '../../../src/core/spec/types.js';
import type { ServiceSpecInput } from '../../../src/core/spec/validate.js';
import { node, service } from './fixtures.js';
import { Sim } from './sim.js';

/**
 * Drives a RollingUpdate against the Sim: actions go to the store, the orchestrator and
 * scheduler run, agents start/stop tasks (images containing "crash" fail at start), and
 * observed state changes come back as events. Drains are confirmed automatically unless
 * `autoDrain` is false.
 */
class Harness {
  readonly sim: Sim;
  ru!: RollingUpdate;
  readonly actions: Array<{ at: number; a: Action }> = [];
  readonly states: Array<{ at: number; state: UpdateState }> = [];
  readonly pendingDrains: string[] = [];
  autoDrain = true;
  /** Minimum running tasks of the service seen at any instant. */
  minRunning = Infinity;
  maxLive = 0;
  private seen = new Map<string, TaskState>();

  constructor(replicas: number | 'global', update: Partial<ServiceSpecInput>) {
    const mode = replicas === 'global' ? { global: {} } : { replicated: { replicas } };
    this.sim = new Sim([node('n1'), node('n2'), node('n3')], [service('web', { mode, ...update })]);
    // A crashing image fails as soon as it is assigned.
    const agents = this.sim.agents.bind(this.sim);
    this.sim.agents = () => {
      for (const t of this.sim.tasks.values()) {
        if (t.state === 'assigned' && t.desiredState === 'running' && t.spec.image.includes('crash')) this.sim.setTask(t.id, 'failed');
      }
      agents();
    };
    this.sim.settle();
    for (const t of this.sim.tasks.values()) this.seen.set(t.id, t.state);
  }

  start(to: Partial<ServiceSpecInput>): void {
    const from = this.sim.services.get('web')!;
    const next: Service = service('web', { ...this.specInput(), ...to }, from.version + 1);
    this.sim.services.set('web', { ...next, previous: { version: from.version, spec: from.spec } });
    this.sim.updating.add('web');
    this.ru = new RollingUpdate({
      serviceId: 'web', from: { version: from.version, spec: from.spec }, to: { version: next.version, spec: next.spec },
      tasks: [...this.sim.tasks.values()].filter((t) => t.serviceId === 'web'), now: this.sim.clock.now(), newId: this.sim.newId,
    });
    this.stepUntilQuiet();
  }
  private specInput(): Partial<ServiceSpecInput> {
    return this.sim.services.get('web')!.spec as unknown as Partial<ServiceSpecInput>;
  }

  private applyUpdater(): number {
    const acts = this.ru.drain();
    const now = this.sim.clock.now();
    for (const a of acts) {
      this.actions.push({ at: now, a });
      if (a.type === 'updateState') this.states.push({ at: now, state: a.state });
      if (a.type === 'drainTask') this.pendingDrains.push(a.taskId);
    }
    this.sim.apply(acts);
    return acts.length;
  }

  /** One round at the current instant; returns whether anything happened. */
  private round(): boolean {
    const now = this.sim.clock.now();
    let busy = this.applyUpdater() > 0;
    const r = reconcile({ services: [...this.sim.services.values()], nodes: [...this.sim.nodes.values()], tasks: [...this.sim.tasks.values()], now, newId: this.sim.newId, updating: this.sim.updating });
    this.sim.apply(r.actions);
    if (r.actions.length) busy = true;
    this.sim.scheduleNow();
    this.sim.agents();
    const events: UpdateEvent[] = replacementEvents(r.actions, 'web');
    for (const t of this.sim.tasks.values()) {
      const before = this.seen.get(t.id);
      if (before === t.state) continue;
      this.seen.set(t.id, t.state);
      events.push(...eventsForTaskChange(before === undefined ? undefined : { state: before }, t));
    }
    if (this.autoDrain) for (const id of this.pendingDrains.splice(0)) events.push({ type: 'taskDrained', taskId: id });
    for (const ev of events) this.ru.handle(ev, now);
    this.ru.tick(now);
    const live = this.sim.live('web');
    this.minRunning = Math.min(this.minRunning, live.filter((t) => t.state === 'running').length);
    this.maxLive = Math.max(this.maxLive, live.length);
    return busy || events.length > 0;
  }

  stepUntilQuiet(): void {
    for (let i = 0; i < 50 && this.round(); i++);
  }

  /** Runs to `untilMs`, jumping from deadline to deadline. */
  runUntil(untilMs: number): void {
    for (let i = 0; i < 10_000; i++) {
      this.stepUntilQuiet();
      const ds = [this.ru.nextDeadline(), this.sim.lastDeadline].filter((d): d is number => d !== undefined && d > this.sim.clock.now());
      const next = Math.min(untilMs, ...ds);
      if (next <= this.sim.clock.now()) return;
      this.sim.clock.set(next);
      // Orchestrator deadlines (restart delays) are honoured by the next reconcile.
      const r = reconcile({ services: [...this.sim.services.values()], nodes: [...this.sim.nodes.values()], tasks: [...this.sim.tasks.values()], now: next, newId: this.sim.newId, updating: this.sim.updating });
      this.sim.lastDeadline = r.nextDeadline;
      this.sim.apply(r.actions);
      for (const ev of replacementEvents(r.actions, 'web')) this.ru.handle(ev, next);
      this.ru.tick(next);
    }
  }

  creates(): Array<{ at: number; task: Task }> {
    return this.actions.flatMap(({ at, a }) => (a.type === 'createTask' ? [{ at, task: a.task }] : []));
  }
  versions(): Record<number, number> {
    const out: Record<number, number> = {};
    for (const t of this.sim.running('web')) out[t.specVersion] = (out[t.specVersion] ?? 0) + 1;
    return out;
  }
}

const cfg = (over: Record<string, unknown>) => ({ updateConfig: { monitorMs: 5000, ...over } });

describe('rolling update', () => {
  test('parallelism 2, delay 1 s over 6 replicas: three waves one second apart, never below 4 running', () => {
    const h = new Harness(6, cfg({ parallelism: 2, delayMs: 1000 }));
    h.start({ image: 'whoami:2' });
    h.runUntil(60_000);
    assert.deepEqual(h.creates().map((c) => c.at), [0, 0, 1000, 1000, 2000, 2000]);
    assert.deepEqual(h.versions(), { 2: 6 });
    assert.equal(h.minRunning, 4);
    assert.equal(h.ru.state, 'completed');
    // Completed only after the last task's monitor period (5 s after t=2000).
    assert.deepEqual(h.states.map((s) => [s.state, s.at]), [['updating', 0], ['completed', 2001 + 5000]]);
    h.sim.updating.delete('web');
    h.sim.settle();
    assert.equal(h.sim.live('web').length, 6);
  });

  test('stop-first: each replaced task is drained, then stopped, then its successor starts', () => {
    const h = new Harness(3, cfg({ parallelism: 1 }));
    h.start({ image: 'whoami:2' });
    h.runUntil(60_000);
    const seq = h.actions.filter(({ a }) => a.type !== 'updateState').slice(0, 4).map(({ a }) => a.type + (a.type === 'createTask' ? `:${a.task.desiredState}` : ''));
    assert.deepEqual(seq, ['drainTask', 'shutdownTask', 'createTask:ready', 'startTask']);
    assert.equal(h.maxLive, 3, 'never more live tasks than replicas');
    assert.deepEqual(h.versions(), { 2: 3 });
  });

  test('start-first: the new task runs before the old one is drained and stopped; never below 3 running', () => {
    const h = new Harness(3, cfg({ parallelism: 1, order: 'start-first' }));
    h.start({ image: 'whoami:2' });
    h.runUntil(60_000);
    const seq = h.actions.filter(({ a }) => a.type !== 'updateState').slice(0, 3).map(({ a }) => a.type);
    assert.deepEqual(seq, ['createTask', 'drainTask', 'shutdownTask']);
    assert.equal(h.minRunning, 3);
    assert.equal(h.maxLive, 4);
    assert.deepEqual(h.versions(), { 2: 3 });
  });

  test('drain confirmation gates shutdown (no fixed sleep)', () => {
    const h = new Harness(2, cfg({ parallelism: 1 }));
    h.autoDrain = false;
    h.start({ image: 'whoami:2' });
    h.runUntil(10_000);
    const drained = h.pendingDrains[0]!;
    assert.ok(drained);
    assert.equal(h.actions.filter(({ a }) => a.type === 'shutdownTask').length, 0, 'nothing stopped before the agents confirm');
    // progress (what a test prints when an update does not finish) names the item waiting for its drain.
    const p = h.ru.progress;
    assert.deepEqual([p.state, p.busy, p.canaryOpen], ['updating', 1, false]);
    assert.ok(p.items.some((x) => x.includes(' draining ') && x.includes(`old=${drained}:running/`)), JSON.stringify(p.items));
    h.ru.handle({ type: 'taskDrained', taskId: drained }, h.sim.clock.now());
    h.pendingDrains.splice(0);
    h.autoDrain = true;
    h.stepUntilQuiet();
    const shut = h.actions.filter(({ a }) => a.type === 'shutdownTask');
    assert.ok(shut.length >= 1);
    assert.ok(shut.every((x) => x.at === 10_000));
    h.runUntil(60_000);
    assert.equal(h.ru.state, 'completed');
    assert.deepEqual(h.ru.progress.items, [], 'nothing in flight once completed');
  });

  test('unconfirmed drain goes on after drainTimeoutMs and says so', () => {
    const h = new Harness(1, cfg({ parallelism: 1 }));
    h.autoDrain = false;
    h.start({ image: 'whoami:2' });
    h.runUntil(120_000);
    assert.equal(h.actions.find(({ a }) => a.type === 'shutdownTask')!.at, 30_000);
    const last = h.actions.filter(({ a }) => a.type === 'updateState').pop()!.a;
    assert.ok(last.type === 'updateState' && last.state === 'completed' && /1 drain\(s\) not confirmed/.test(last.message));
  });

  test('failing new version with failure action rollback returns to the old spec by itself', () => {
    const h = new Harness(6, { ...cfg({ parallelism: 2, delayMs: 1000, failureAction: 'rollback' }), rollbackConfig: { parallelism: 0, monitorMs: 1000 } });
    h.start({ image: 'crash:2' });
    h.runUntil(120_000);
    assert.deepEqual(h.states.map((s) => s.state), ['updating', 'rollback_started', 'rollback_completed']);
    const set = h.actions.find(({ a }) => a.type === 'setServiceSpec')!.a;
    assert.ok(set.type === 'setServiceSpec' && set.version === 1 && set.spec.image === 'whoami:1');
    assert.equal(h.sim.services.get('web')!.version, 1);
    h.sim.updating.delete('web');
    h.sim.settle();
    assert.deepEqual(h.versions(), { 1: 6 });
    assert.equal(h.sim.live('web').length, 6);
    assert.ok(h.sim.live('web').every((t) => t.spec.image === 'whoami:1'));
  });

  test('failure action pause stops taking slots; resume goes on', () => {
    const h = new Harness(6, cfg({ parallelism: 1, failureAction: 'pause' }));
    h.start({ image: 'crash:2' });
    h.runUntil(30_000);
    assert.equal(h.ru.state, 'paused');
    const updaterCreates = h.actions.filter(({ a }) => a.type === 'createTask' && a.task.specVersion === 2 && a.replaces === undefined).length;
    assert.equal(updaterCreates, 1, 'one slot tried, then paused');
    assert.equal(h.ru.nextDeadline(), undefined);
    // Fix forward: resume keeps replacing slots (they still fail: pauses again after one more).
    h.ru.resume(h.sim.clock.now());
    h.runUntil(60_000);
    assert.equal(h.ru.state, 'paused');
  });

  test('max failure ratio tolerates some failures with continue', () => {
    const h = new Harness(4, cfg({ parallelism: 1, failureAction: 'continue' }));
    h.start({ image: 'crash:2' });
    h.runUntil(60_000);
    assert.equal(h.ru.state, 'completed');
    assert.equal(h.ru.failureCount, 4);
  });

  test('manual rollback after completion returns every slot to the old spec', () => {
    const h = new Harness(3, { ...cfg({ parallelism: 3 }), rollbackConfig: { parallelism: 1, monitorMs: 0 } });
    h.start({ image: 'whoami:2' });
    h.runUntil(30_000);
    assert.equal(h.ru.state, 'completed');
    h.ru.rollback(h.sim.clock.now());
    h.runUntil(60_000);
    assert.equal(h.ru.state, 'rollback_completed');
    assert.deepEqual(h.versions(), { 1: 3 });
  });

  test('global service: each node\'s task is replaced on the same node', () => {
    const h = new Harness('global', cfg({ parallelism: 1, delayMs: 500 }));
    const before = new Map(h.sim.running('web').map((t) => [t.nodeId!, t.id]));
    h.start({ image: 'whoami:2' });
    h.runUntil(60_000);
    assert.equal(h.ru.state, 'completed');
    assert.deepEqual(h.creates().map((c) => [c.at, c.task.nodeId]), [[0, 'n1'], [500, 'n2'], [1000, 'n3']]);
    assert.deepEqual(h.sim.perNode('web'), { n1: 1, n2: 1, n3: 1 });
    for (const t of h.sim.running('web')) {
      assert.equal(t.specVersion, 2);
      assert.notEqual(before.get(t.nodeId!), t.id);
    }
  });

  test('a new task failing within the monitor period after running counts as a failure', () => {
    const h = new Harness(3, { ...cfg({ parallelism: 1, delayMs: 1000, monitorMs: 10_000, failureAction: 'rollback' }), rollbackConfig: { monitorMs: 0 } });
    h.start({ image: 'whoami:2' });
    h.runUntil(500);
    const first = h.sim.running('web').find((t) => t.specVersion === 2)!;
    assert.ok(first);
    h.sim.setTask(first.id, 'failed');
    h.runUntil(60_000);
    assert.deepEqual(h.states.map((s) => s.state), ['updating', 'rollback_started', 'rollback_completed']);
    h.sim.updating.delete('web');
    h.sim.settle();
    assert.deepEqual(h.versions(), { 1: 3 });
  });

  test('a failure after the monitor period does not count', () => {
    const h = new Harness(1, cfg({ parallelism: 1, monitorMs: 1000, failureAction: 'pause' }));
    h.start({ image: 'whoami:2' });
    h.runUntil(5000);
    assert.equal(h.ru.state, 'completed');
    h.ru.handle({ type: 'taskFailed', taskId: h.sim.running('web')[0]!.id }, 5000);
    assert.equal(h.ru.state, 'completed');
    assert.equal(h.ru.failureCount, 0);
  });

  test('an update that changes no task spec replaces nothing and completes at once', () => {
    const h = new Harness(2, cfg({}));
    h.start({ updateConfig: { parallelism: 5 } });
    h.runUntil(1000);
    assert.equal(h.ru.state, 'completed');
    assert.equal(h.creates().length, 0);
    assert.deepEqual(h.states.map((s) => [s.state, s.at]), [['updating', 0], ['completed', 0]]);
  });
});
