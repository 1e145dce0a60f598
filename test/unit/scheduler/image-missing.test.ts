/**
 * A node that lacks a task's image rejects it (`image X not present on node N`) and the
 * replacement goes elsewhere (swarm's behaviour); the memory fades after
 * IMAGE_MISSING_TTL_MS and is dropped when the node's description changes. Simulated time:
 * reconcile (restart policy) + schedule, with agents that fail a task whose image their node
 * lacks.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { reconcile } from '../../../src/core/orchestrator/reconcile.js';
import { schedule } from '../../../src/core/scheduler/scheduler.js';
import { IMAGE_MISSING_TTL_MS, missingImageOf } from '../../../src/core/scheduler/image.js';
import { imageMissingMessage } from '../../../src/core/spec/runtime.js';
import type { Node, Service, Task } from '../../../src/core/spec/types.js';
import { node, pendingTasks, service } from '../orchestrator/fixtures.js';
import { Sim } from '../orchestrator/sim.js';

const docker = (id: string, over: Partial<Node> = {}): Node => node(id, { runtimes: ['netns', 'docker'], ...over });
const IMG = 'nginx:1.25';

/** A cluster whose agents start a task only when their node holds its image; others fail it as the worker does. */
class ImageSim extends Sim {
  /** node id → images it lacks */
  lacks = new Map<string, Set<string>>();
  rejected: string[] = [];

  constructor(nodes: Node[], services: Service[]) {
    super(nodes, services);
    this.autoRun = false;
  }

  runAgents(): void {
    const now = this.clock.now();
    for (const t of this.tasks.values()) {
      const n = t.nodeId ? this.nodes.get(t.nodeId) : undefined;
      if (!n || n.state !== 'ready') continue;
      if (t.desiredState === 'running' && t.state === 'assigned') {
        const missing = this.lacks.get(n.id)?.has(t.spec.image);
        const error = missing ? imageMissingMessage(t.spec.image, n.hostname) : undefined;
        if (missing) this.rejected.push(n.id);
        this.tasks.set(t.id, { ...t, state: missing ? 'failed' : 'running', ...(error ? { error, message: error } : {}), timestamps: { ...t.timestamps, updated: now } });
      }
      if (t.desiredState === 'shutdown' && (t.state === 'running' || t.state === 'assigned')) this.tasks.set(t.id, { ...t, state: 'shutdown', timestamps: { ...t.timestamps, updated: now } });
    }
  }

  /** reconcile → schedule → agents until quiet; returns the restart deadline, if any. */
  run(): number | undefined {
    let deadline: number | undefined;
    for (let i = 0; i < 20; i++) {
      const r = reconcile({ services: [...this.services.values()], nodes: [...this.nodes.values()], tasks: [...this.tasks.values()], now: this.clock.now(), newId: this.newId });
      deadline = r.nextDeadline;
      this.apply(r.actions);
      const before = JSON.stringify([...this.tasks.values()].map((t) => [t.id, t.state, t.nodeId]));
      this.scheduleNow();
      this.runAgents();
      if (r.actions.length === 0 && before === JSON.stringify([...this.tasks.values()].map((t) => [t.id, t.state, t.nodeId]))) return deadline;
    }
    throw new Error('did not settle');
  }

  pendingReasons(serviceId: string): string[] {
    const pending = [...this.tasks.values()].filter((t) => t.serviceId === serviceId && t.state === 'pending' && t.desiredState !== 'shutdown');
    const r = schedule(pending, [...this.nodes.values()], this.tasks.values(), { now: this.clock.now() });
    return r.unschedulable.map((u) => u.reason);
  }
}

describe('a node without the image', () => {
  test('rejects the task; after the restart delay the replacement lands on a node that has it', () => {
    const web = service('web', { image: IMG, runtime: undefined, mode: { replicated: { replicas: 3 } }, restartPolicy: { condition: 'any', delayMs: 5000 } });
    const sim = new ImageSim([docker('n1'), docker('n2'), docker('n3')], [web]);
    sim.lacks.set('n2', new Set([IMG]));
    const deadline = sim.run();
    assert.deepEqual(sim.rejected, ['n2'], 'spread put one task on n2 first, which rejected it');
    const failed = [...sim.tasks.values()].find((t) => t.state === 'failed')!;
    assert.equal(failed.error, 'image nginx:1.25 not present on node n2');
    // The restart policy still applies: nothing replaces the task before its delay.
    assert.equal(deadline, 5000);
    assert.equal(sim.running('web').length, 2);
    sim.clock.set(5000);
    sim.run();
    assert.equal(sim.running('web').length, 3);
    assert.ok(!sim.running('web').some((t) => t.nodeId === 'n2'), 'no task runs on n2');
    assert.deepEqual(sim.rejected, ['n2'], 'n2 was not tried again');
    // The failed task keeps its error for service ps, though its message moved on.
    assert.equal(sim.tasks.get(failed.id)!.message, 'restarting');
    assert.equal(sim.tasks.get(failed.id)!.error, 'image nginx:1.25 not present on node n2');
  });

  test('the memory fades after the TTL: n2 is tried again (scale-up)', () => {
    const web = service('web', { image: IMG, runtime: undefined, mode: { replicated: { replicas: 3 } }, restartPolicy: { condition: 'any', delayMs: 0 } });
    const sim = new ImageSim([docker('n1'), docker('n2'), docker('n3')], [web]);
    sim.lacks.set('n2', new Set([IMG]));
    sim.run();
    assert.deepEqual(sim.rejected, ['n2']);
    sim.lacks.delete('n2'); // someone `docker load`ed the image on n2
    sim.clock.set(IMAGE_MISSING_TTL_MS - 1);
    sim.services.set('web', service('web', { image: IMG, runtime: undefined, mode: { replicated: { replicas: 4 } } }));
    sim.run();
    assert.equal(sim.running('web').filter((t) => t.nodeId === 'n2').length, 0, 'inside the TTL n2 is still avoided');
    sim.clock.set(IMAGE_MISSING_TTL_MS + 1);
    sim.services.set('web', service('web', { image: IMG, runtime: undefined, mode: { replicated: { replicas: 6 } } }));
    sim.run();
    assert.equal(sim.running('web').length, 6);
    assert.ok(sim.running('web').some((t) => t.nodeId === 'n2'), 'after the TTL n2 takes tasks again');
  });

  test('a changed node description (new engine) forgets the images it lacked', () => {
    const now = 10_000;
    const t = { state: 'failed' as const, error: imageMissingMessage(IMG, 'n2'), spec: { image: IMG } as Task['spec'], timestamps: { created: 0, updated: now - 1000 } };
    assert.equal(missingImageOf(t, {}, now), IMG);
    assert.equal(missingImageOf(t, { descriptionAt: now - 2000 }, now), IMG, 'described before the failure: still missing');
    assert.equal(missingImageOf(t, { descriptionAt: now - 500 }, now), undefined, 'described after: forgotten');
    assert.equal(missingImageOf(t, {}, now - 1000 + IMAGE_MISSING_TTL_MS + 1), undefined, 'after the TTL');
    assert.equal(missingImageOf({ ...t, state: 'running' }, {}, now), undefined, 'only failed/rejected tasks count');
    assert.equal(missingImageOf({ ...t, error: 'exit code 1' }, {}, now), undefined, 'only the image-missing error');
    assert.equal(missingImageOf({ ...t, spec: { image: 'other' } as Task['spec'] }, {}, now), undefined, 'only for the task\'s own image');
  });

  test('every node lacks it: the task waits with the reason instead of failing in a loop', () => {
    const web = service('web', { image: IMG, runtime: undefined, mode: { replicated: { replicas: 1 } }, restartPolicy: { condition: 'any', delayMs: 0 } });
    const sim = new ImageSim([docker('n1'), docker('n2'), docker('n3')], [web]);
    for (const n of ['n1', 'n2', 'n3']) sim.lacks.set(n, new Set([IMG]));
    sim.run();
    assert.deepEqual([...sim.rejected].sort(), ['n1', 'n2', 'n3'], 'each node tried once');
    assert.deepEqual(sim.pendingReasons('web'), ['no suitable node (image nginx:1.25 not present on 3 nodes)']);
    sim.clock.set(30_000);
    sim.run();
    assert.equal(sim.rejected.length, 3, 'no retry inside the TTL');
  });

  test('another image of the same node is not affected; neither is a netns task', () => {
    const nodes = [docker('n1')];
    const failed: Task = { ...pendingTasks(service('a', { image: IMG, runtime: undefined }), 1)[0]!, nodeId: 'n1', state: 'failed', desiredState: 'shutdown', error: imageMissingMessage(IMG, 'n1'), timestamps: { created: 0, updated: 100 } };
    const other = pendingTasks(service('b', { image: 'redis:7', runtime: undefined }), 1);
    assert.equal(schedule(other, nodes, [failed], { now: 200 }).assignments.length, 1);
    const sameImage = pendingTasks(service('c', { image: IMG, runtime: undefined }), 1);
    assert.deepEqual(schedule(sameImage, nodes, [failed], { now: 200 }).unschedulable.map((u) => u.reason), ['no suitable node (image nginx:1.25 not present on 1 node)']);
  });
});
