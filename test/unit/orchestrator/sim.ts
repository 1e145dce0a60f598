/**
 * A tiny in-memory manager for tests: a store of services/nodes/tasks, the pure
 * reconcile + schedule cores, and "agents" that run what they are given at once.
 * Rolling updates put in `updaters` are fed as the manager's engine feeds them
 * (replacements, task state changes, drains confirmed at once) and their actions applied.
 */
import { ManualClock } from '../../../src/core/clock.js';
import type { Action } from '../../../src/core/orchestrator/actions.js';
import { reconcile } from '../../../src/core/orchestrator/reconcile.js';
import { eventsForTaskChange, replacementEvents } from '../../../src/core/orchestrator/events.js';
import type { RollingUpdate, UpdateEvent } from '../../../src/core/orchestrator/update.js';
import { schedule } from '../../../src/core/scheduler/scheduler.js';
import type { Node, Service, Task, TaskState } from '../../../src/core/spec/types.js';
import { idGen } from './fixtures.js';

export class Sim {
  readonly clock = new ManualClock(0);
  readonly services = new Map<string, Service>();
  readonly nodes = new Map<string, Node>();
  readonly tasks = new Map<string, Task>();
  readonly newId = idGen('t');
  readonly log: Action[] = [];
  lastDeadline: number | undefined;
  /** When true, assigned tasks on ready nodes start running and shut-down ones stop at once. */
  autoRun = true;
  updating = new Set<string>();
  /** Services holding a canary (the manager derives it from the record's `canary`). */
  canaryHeld = new Set<string>();
  /** Rolling updates by service id (empty: settle is reconcile → schedule → agents only). */
  readonly updaters = new Map<string, RollingUpdate>();

  constructor(nodes: Node[], services: Service[] = []) {
    for (const n of nodes) this.nodes.set(n.id, n);
    for (const s of services) this.services.set(s.id, s);
  }

  setTask(id: string, state: TaskState): void {
    const t = this.tasks.get(id)!;
    this.tasks.set(id, { ...t, state, timestamps: { ...t.timestamps, updated: this.clock.now() } });
  }

  apply(actions: Action[]): void {
    const now = this.clock.now();
    for (const a of actions) {
      this.log.push(a);
      switch (a.type) {
        case 'createTask': this.tasks.set(a.task.id, a.task); break;
        case 'removeTask': this.tasks.delete(a.taskId); break;
        case 'shutdownTask': {
          const t = this.tasks.get(a.taskId);
          if (t) this.tasks.set(t.id, { ...t, desiredState: 'shutdown', message: a.reason });
          break;
        }
        case 'startTask': {
          const t = this.tasks.get(a.taskId);
          if (t) this.tasks.set(t.id, { ...t, desiredState: 'running' });
          break;
        }
        case 'setServiceSpec': {
          const s = this.services.get(a.serviceId)!;
          this.services.set(s.id, { id: s.id, version: a.version, spec: a.spec });
          break;
        }
        default: break;
      }
    }
    void now;
  }

  /** Agents: run what was assigned, stop what should stop (nodes that are down do nothing). */
  agents(): void {
    if (!this.autoRun) return;
    const now = this.clock.now();
    for (const t of this.tasks.values()) {
      const n = t.nodeId ? this.nodes.get(t.nodeId) : undefined;
      if (!n || n.state !== 'ready') continue;
      if (t.desiredState === 'running' && t.state === 'assigned') this.tasks.set(t.id, { ...t, state: 'running', timestamps: { ...t.timestamps, updated: now } });
      if (t.desiredState === 'shutdown' && (t.state === 'running' || t.state === 'assigned' || t.state === 'pending')) {
        this.tasks.set(t.id, { ...t, state: 'shutdown', timestamps: { ...t.timestamps, updated: now } });
      }
    }
  }

  scheduleNow(): void {
    const pending = [...this.tasks.values()].filter((t) => t.state === 'pending' && t.desiredState !== 'shutdown');
    if (!pending.length) return;
    const r = schedule(pending, [...this.nodes.values()], this.tasks.values(), { now: this.clock.now() });
    for (const a of r.assignments) {
      const t = this.tasks.get(a.taskId)!;
      this.tasks.set(t.id, { ...t, nodeId: a.nodeId, state: 'assigned' });
    }
  }

  /** Reconcile → apply → schedule → agents (→ updaters), until nothing changes. */
  settle(): void {
    for (let i = 0; i < 40; i++) {
      const before = new Map(this.tasks);
      const r = reconcile({
        services: [...this.services.values()], nodes: [...this.nodes.values()], tasks: [...this.tasks.values()], now: this.clock.now(), newId: this.newId,
        updating: this.updating, canaryHeld: this.canaryHeld,
      });
      this.lastDeadline = r.nextDeadline;
      this.apply(r.actions);
      const events = new Map<string, UpdateEvent[]>();
      for (const id of this.updaters.keys()) events.set(id, replacementEvents(r.actions, id));
      this.scheduleNow();
      this.agents();
      const moved = this.pumpUpdaters(before, events);
      if (r.actions.length === 0 && !moved) return;
    }
    throw new Error('did not settle');
  }

  /** Feeds the updaters their events (replacements, task changes since `before`); true when they acted. */
  private pumpUpdaters(before: ReadonlyMap<string, Task>, events: Map<string, UpdateEvent[]>): boolean {
    if (this.updaters.size === 0) return false;
    const now = this.clock.now();
    for (const t of this.tasks.values()) {
      const prev = before.get(t.id);
      if (prev?.state === t.state) continue;
      events.get(t.serviceId)?.push(...eventsForTaskChange(prev, t));
    }
    let moved = false;
    for (const [id, u] of this.updaters) {
      for (const ev of events.get(id) ?? []) u.handle(ev, now);
      u.tick(now);
      // The agents confirm a drain at once (the engine answers drainTask with taskDrained).
      for (let acts = u.drain(); acts.length; acts = u.drain()) {
        moved = true;
        this.apply(acts);
        for (const a of acts) if (a.type === 'drainTask') u.handle({ type: 'taskDrained', taskId: a.taskId }, now);
      }
    }
    return moved;
  }

  live(serviceId: string): Task[] {
    return [...this.tasks.values()].filter((t) => t.serviceId === serviceId && t.desiredState !== 'shutdown');
  }
  running(serviceId: string): Task[] {
    return this.live(serviceId).filter((t) => t.state === 'running');
  }
  perNode(serviceId: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const t of this.running(serviceId)) out[t.nodeId!] = (out[t.nodeId!] ?? 0) + 1;
    return out;
  }
  setNode(id: string, over: Partial<Node>): void {
    this.nodes.set(id, { ...this.nodes.get(id)!, ...over });
  }
}
