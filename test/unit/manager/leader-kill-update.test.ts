/**
 * The leader is killed mid rolling update (issue 13, item 1), on the manager's real step:
 * ControlState + resumeUpdates + startStrandedTasks + step(), with simulated agents and
 * gossip on simulated time. The killed node (n1) runs the old leader and holds one slot of
 * the service; every case chooses which slot (the one in flight, a queued one, a finished
 * one) and sweeps the moment of the kill over the whole update, so each path runs every
 * time. Each run must: finish the update within 20 s of the kill (etcd lease 4 s + the
 * 5 s down grace + 3 slots × 2 s delay, with room), end with exactly one live task per slot
 * on the new spec, never want two tasks running in one slot (stop-first), and never start
 * a task that was told to shut down.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventsForTaskChange, type RollingUpdate } from '../../../src/core/orchestrator/index.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecOf, type ServiceSpec } from '../../../src/core/spec/types.js';
import { resumeUpdates, startStrandedTasks } from '../../../src/manager/control/failover.js';
import { pumpUpdaters, step, type StepContext } from '../../../src/manager/control/engine.js';
import { ControlState } from '../../../src/manager/control/state.js';
import type { TaskRecord } from '../../../src/manager/control/model.js';
import type { ManagedNode } from '../../../src/manager/model.js';

const NODES = ['n1', 'n2', 'n3'];
const TICK = 100;
const DETECT_MS = 1000; // gossip declares the killed node dead
const ELECT_MS = 4000; // etcd lease runs out, another manager leads
const DOWN_GRACE_MS = 5000;

const v1 = parseServiceSpec({ name: 'web', image: 'whoami', mode: { replicated: { replicas: 3 } }, updateConfig: { parallelism: 1, delayMs: 2000 } });
const v2: ServiceSpec = { ...v1, env: { V: '2' } };

class Cluster {
  readonly st = new ControlState();
  now = 0;
  updaters = new Map<string, RollingUpdate>();
  killedAt: number | undefined;
  leaderFrom = 0;
  since = 0;
  resume = false;
  private n = 0;
  readonly log: string[] = [];
  /** Tasks told to shut down (desired shutdown seen), to catch one brought back. */
  private readonly shutdownSeen = new Set<string>();

  constructor(slotOfN1: number) {
    for (const id of NODES) {
      const node: ManagedNode = {
        id, hostname: id, role: 'manager', availability: 'active', state: 'ready', labels: {}, resources: { cpuMilli: 4000, memoryBytes: 2 ** 33 },
        addr: `10.0.0.${id.slice(1)}`, certSerial: id, certNotAfter: 1e13, createdAt: 0, updatedAt: 0,
      };
      this.st.putNode(node);
    }
    const a = this.st.ipam.create({ name: 'ingress', subnet: '10.255.0.0/16', gateway: '10.255.0.1', vni: 4096 });
    this.st.putNetwork({ id: 'ingressid', name: 'ingress', driver: 'overlay', subnet: a.subnet, gateway: a.gateway, vni: a.vni, attachable: false, ingress: true, createdAt: 0 });
    this.st.putService({ id: 'svc', version: 1, spec: v1, vips: {}, createdAt: 0, updatedAt: 0 });
    // Slot `slotOfN1` on n1, the others on n2 and n3.
    const others = ['n2', 'n3'];
    for (let slot = 1; slot <= 3; slot++) {
      const nodeId = slot === slotOfN1 ? 'n1' : others.shift()!;
      const t: TaskRecord = {
        id: `s${slot}v1`, serviceId: 'svc', slot, nodeId, specVersion: 1, spec: taskSpecOf(v1), desiredState: 'running', state: 'running',
        timestamps: { created: 0, updated: 0 }, addresses: {},
      };
      this.st.putTask(t);
    }
  }

  private newId = (): string => `t${++this.n}`;
  private liveness = (h: string): 'alive' | 'dead' => (this.killedAt !== undefined && h === 'n1' && this.now >= this.killedAt + DETECT_MS ? 'dead' : 'alive');
  private stateAge = (h: string): number | undefined => (this.liveness(h) === 'dead' ? this.now - this.killedAt! - DETECT_MS : this.now);
  private ctx(selfId: string): StepContext {
    return { now: this.now, newId: this.newId, updaters: this.updaters, liveness: this.liveness, selfId, absentGraceMs: 15_000, since: this.since, downGraceMs: DOWN_GRACE_MS, stateAge: this.stateAge };
  }
  get leader(): string | undefined {
    if (this.killedAt === undefined) return 'n1';
    return this.now >= this.leaderFrom ? 'n2' : undefined;
  }

  /** `netctl service update --env-add V=2` on the first leader. */
  startUpdate(): void {
    const s = this.st.services.get('svc')!;
    this.st.putService({ ...s, version: 2, spec: v2, previous: { version: 1, spec: v1 }, update: { state: 'updating', message: '', at: this.now } });
    this.resume = true; // the route creates the machine the same way a new leader does
  }

  kill(): void {
    this.killedAt = this.now;
    this.leaderFrom = this.now + ELECT_MS;
    this.updaters = new Map(); // the old leader's machines die with it
    this.resume = true;
    this.log.push(`${this.now}: kill n1`);
  }

  /** Agents that are alive run what they are told and report to the leader. */
  private agents(): void {
    const leader = this.leader;
    if (!leader) return; // reports go to the leader; none until one is elected
    const events = [];
    for (const t of [...this.st.tasks.values()]) {
      if (!t.nodeId || this.liveness(t.nodeId) === 'dead' || (this.killedAt !== undefined && t.nodeId === 'n1')) continue;
      let state: TaskRecord['state'] | undefined;
      if (t.desiredState === 'running' && t.state === 'assigned') state = 'running';
      else if (t.desiredState === 'shutdown' && (t.state === 'assigned' || t.state === 'running')) state = 'shutdown';
      if (!state) continue;
      const next: TaskRecord = { ...t, state, timestamps: { ...t.timestamps, updated: this.now } };
      this.st.putTask(next);
      for (const ev of eventsForTaskChange(t, next)) events.push({ serviceId: t.serviceId, ev });
    }
    if (events.length) pumpUpdaters(this.st, events, this.ctx(leader));
  }

  tick(): void {
    this.now += TICK;
    const leader = this.leader;
    if (!leader) return;
    if (this.killedAt !== undefined && this.since < this.leaderFrom) this.since = this.now;
    this.agents();
    if (this.resume) {
      this.resume = false;
      resumeUpdates(this.st, this.updaters, this.now, this.newId);
    }
    startStrandedTasks(this.st);
    step(this.st, this.ctx(leader));
    this.check();
  }

  private check(): void {
    const bySlot = new Map<number, TaskRecord[]>();
    for (const t of this.st.tasks.values()) {
      if (t.desiredState === 'shutdown') this.shutdownSeen.add(t.id);
      else if (this.shutdownSeen.has(t.id)) assert.fail(`${this.now}: task ${t.id} was told to shut down and then brought back\n${this.dump()}`);
      if (t.desiredState !== 'running' || t.state === 'orphaned') continue;
      bySlot.set(t.slot!, [...(bySlot.get(t.slot!) ?? []), t]);
    }
    for (const [slot, ts] of bySlot) {
      const onLive = ts.filter((t) => !(t.nodeId === 'n1' && this.killedAt !== undefined));
      assert.ok(onLive.length <= 1, `${this.now}: slot ${slot} wants ${onLive.length} tasks running at once (stop-first)\n${this.dump()}`);
    }
  }

  updateState(): string | undefined {
    return this.st.services.get('svc')!.update?.state;
  }

  /** Done: the update ended and every slot has one live task, running, on v2, on a live node. */
  done(): boolean {
    if (!['completed', 'rollback_completed'].includes(this.updateState() ?? '')) return false;
    for (let slot = 1; slot <= 3; slot++) {
      const live = [...this.st.tasks.values()].filter((t) => t.slot === slot && t.desiredState !== 'shutdown');
      if (live.length !== 1 || live[0]!.state !== 'running' || live[0]!.specVersion !== 2 || live[0]!.nodeId === 'n1') return false;
    }
    return true;
  }

  dump(): string {
    const tasks = [...this.st.tasks.values()].sort((a, b) => a.slot! - b.slot! || a.timestamps.created - b.timestamps.created)
      .map((t) => `  s${t.slot} ${t.id} v${t.specVersion} ${t.nodeId ?? '-'} desired=${t.desiredState} state=${t.state} ${t.message ?? ''}`);
    const nodes = [...this.st.nodes.values()].map((n) => `${n.id}:${n.state}`).join(' ');
    return `update=${JSON.stringify(this.st.services.get('svc')!.update)} nodes=${nodes}\n${tasks.join('\n')}\n${this.log.join('\n')}`;
  }
}

/** What the killed node holds at the moment of the kill, seen from the store. */
function phaseOfN1Slot(c: Cluster, slot: number): 'untouched' | 'inFlight' | 'done' {
  const ts = [...c.st.tasks.values()].filter((t) => t.slot === slot);
  const next = ts.find((t) => t.specVersion === 2 && t.desiredState !== 'shutdown');
  if (next?.state === 'running') return 'done';
  const old = ts.find((t) => t.specVersion === 1)!;
  return next || old.desiredState === 'shutdown' ? 'inFlight' : 'untouched';
}

describe('leader killed mid rolling update (the manager step on simulated time)', () => {
  const seen = new Map<string, number>();
  for (const slotOfN1 of [1, 2, 3]) {
    test(`n1 holds slot ${slotOfN1}: for every kill moment, the update finishes within 20 s with one live v2 task per slot`, () => {
      for (let killAfter = 0; killAfter <= 12_000; killAfter += 300) {
        const c = new Cluster(slotOfN1);
        c.startUpdate();
        while (c.now < killAfter) c.tick();
        if (c.updateState() !== 'updating') break; // the update finished before this kill moment
        const phase = phaseOfN1Slot(c, slotOfN1);
        seen.set(phase, (seen.get(phase) ?? 0) + 1);
        c.kill();
        while (!c.done() && c.now - c.killedAt! < 20_000) c.tick();
        assert.ok(c.done(), `slot ${slotOfN1} ${phase} at kill (+${killAfter} ms): not finished 20 s after the kill\n${c.dump()}`);
      }
    });
  }
  test('the sweep covered the killed node holding a queued, an in-flight and a finished slot', () => {
    assert.ok((seen.get('untouched') ?? 0) > 0 && (seen.get('inFlight') ?? 0) > 0 && (seen.get('done') ?? 0) > 0, JSON.stringify([...seen]));
  });
});
