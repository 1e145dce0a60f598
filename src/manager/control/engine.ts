/**
 * The reconcile step of the control plane, on one ControlState: node liveness from gossip
 * → reconcile() actions → rolling-update machines → schedule() of pending tasks with
 * central address allocation. Pure over its inputs except for the in-memory
 * RollingUpdate machines it is given (they survive between steps; a new leader starts
 * without them and the orchestrator keeps the service converging on its current spec).
 *
 * Draining: the worker that runs a task drains it itself when told to stop it: it republishes
 * the task's records as `draining` and stops the process only once every live member of the
 * task's networks acked (table `drain-acks`: that node's LB applied the drain and its DNS
 * dropped the task; src/core/drain/acks.ts, src/agent/drain/wait.ts), or after a bounded
 * timeout. The task reports `stopped` only after that, and a stop-first update starts the
 * replacement on `taskStopped`; so a `drainTask` request is answered at once with
 * `taskDrained` here and the confirmation is not duplicated in the manager.
 */
import { eventsForTaskChange, reconcile, replacementEvents, RollingUpdate, type Action, type UpdateEvent } from '../../core/orchestrator/index.js';
import { schedule } from '../../core/scheduler/index.js';
import type { Node, NodeState, Task } from '../../core/spec/types.js';
import { isTerminal } from '../../core/spec/types.js';
import { addressNetworks, attachNetworks, coreService, type TaskRecord } from './model.js';
import type { ControlState } from './state.js';

/** Gossip state of a member by node name (undefined: not a member at all). */
export type Liveness = (hostname: string) => 'alive' | 'suspect' | 'dead' | 'left' | undefined;
/** How long (ms) gossip has held a member in its current state (undefined: unknown). */
export type StateAge = (hostname: string) => number | undefined;

export interface StepContext {
  now: number;
  newId: () => string;
  updaters: Map<string, RollingUpdate>;
  liveness: Liveness;
  /** This manager's node id: always ready (it is running this code). */
  selfId: string;
  /** A node missing from gossip is declared down only once this much time passed since `since`. */
  absentGraceMs: number;
  /** When the control plane started (its gossip view may still be filling). */
  since: number;
  /** A node dead in gossip is down only after it has been dead this long (ms); see `manager.nodeDownGraceMs`. */
  downGraceMs?: number;
  /** Age of each member's gossip state; without it a dead member is down at once. */
  stateAge?: StateAge;
}

const ACTIVE = new Set(['updating', 'canary', 'rollback_started', 'paused', 'rollback_paused']);

/** A node's state from its gossip membership. */
export function nodeStateFrom(member: ReturnType<Liveness>, createdAt: number, ctx: Pick<StepContext, 'now' | 'since' | 'absentGraceMs' | 'downGraceMs'>, deadForMs?: number): NodeState {
  if (member === 'alive' || member === 'suspect') return 'ready';
  if (member === 'left') return 'down';
  // Dead: the agent is unreachable, its tasks may well be running and serving; wait out the
  // grace with its tasks kept, but give it nothing new (it could not start it): disconnected.
  if (member === 'dead') return deadForMs !== undefined && deadForMs < (ctx.downGraceMs ?? 0) ? 'disconnected' : 'down';
  return ctx.now - Math.max(createdAt, ctx.since) < ctx.absentGraceMs ? 'ready' : 'down';
}

/** Applies orchestrator/updater actions; returns the update events they cause. */
export function applyActions(st: ControlState, actions: readonly Action[], ctx: StepContext): Array<{ serviceId: string; ev: UpdateEvent }> {
  const events: Array<{ serviceId: string; ev: UpdateEvent }> = [];
  const now = ctx.now;
  for (const a of actions) {
    switch (a.type) {
      case 'createTask':
        st.putTask({ ...a.task, addresses: {} });
        break;
      case 'shutdownTask': {
        const t = st.tasks.get(a.taskId);
        if (!t) break;
        let next: TaskRecord = { ...t, desiredState: 'shutdown', message: a.reason };
        if (!isTerminal(t.state)) {
          if (t.nodeId === undefined || t.state === 'new' || t.state === 'pending') next = st.releaseTask({ ...next, state: 'shutdown', timestamps: { ...t.timestamps, updated: now } });
          // Lost with its node: the process may still hold its address there (an agent that
          // comes back adopts it until told otherwise), so the address is kept until the
          // record is reaped or the node reports the task ended.
          else if (nodeLost(st, t)) next = { ...next, state: 'orphaned', timestamps: { ...t.timestamps, updated: now } };
        }
        st.putTask(next);
        for (const ev of eventsForTaskChange(t, next)) events.push({ serviceId: t.serviceId, ev });
        break;
      }
      case 'removeTask':
        st.deleteTask(a.taskId);
        break;
      case 'startTask': {
        // Only a task held back (`ready`) starts: one already told to shut down (its node was
        // lost, the orchestrator replaced it) must never come back to life.
        const t = st.tasks.get(a.taskId);
        if (t && t.desiredState === 'ready' && !isTerminal(t.state)) st.putTask({ ...t, desiredState: 'running' });
        break;
      }
      case 'drainTask': {
        const t = st.tasks.get(a.taskId);
        if (t) events.push({ serviceId: t.serviceId, ev: { type: 'taskDrained', taskId: t.id } });
        break;
      }
      case 'setServiceSpec': {
        const s = st.services.get(a.serviceId);
        if (!s) break;
        const next = { ...s, version: a.version, spec: a.spec, previous: { version: s.version, spec: s.spec }, updatedAt: now };
        st.assignVips(s, next, a.spec.endpointMode === 'vip' ? attachNetworks(a.spec).map((n) => st.networkByName(n)?.id ?? '').filter(Boolean) : []);
        st.putService(next);
        break;
      }
      case 'updateState': {
        const s = st.services.get(a.serviceId);
        // A canary (and so its weights, derived from it by dispatch.ts) lasts while it starts or is
        // held; promotion clears it in its route, a rollback, pause or completion here.
        const keep = a.state === 'updating' || a.state === 'canary';
        if (s) st.putService({ ...s, update: { state: a.state, message: a.message, at: now }, ...(keep ? {} : { canary: undefined }) });
        break;
      }
    }
  }
  return events;
}

/** Feeds events to the services' update machines and applies what they answer, until quiet. */
export function pumpUpdaters(st: ControlState, events: Array<{ serviceId: string; ev: UpdateEvent }>, ctx: StepContext): void {
  let queue = events;
  for (let round = 0; round < 20; round++) {
    for (const { serviceId, ev } of queue) ctx.updaters.get(serviceId)?.handle(ev, ctx.now);
    const more: Array<{ serviceId: string; ev: UpdateEvent }> = [];
    for (const [id, u] of ctx.updaters) {
      u.tick(ctx.now);
      const acts = u.drain();
      if (acts.length) more.push(...applyActions(st, acts, ctx));
      if (!st.services.has(id) || !ACTIVE.has(u.state)) {
        if (!u.drain().length) ctx.updaters.delete(id);
      }
    }
    if (!more.length) return;
    queue = more;
  }
}

/**
 * While a rolling update (or rollback) is actively working a service, a failed task is the
 * updater's to handle (count the failure, replace the slot, roll back): the restart policy
 * would race it with a second task in the same slot. Node-loss replacements still happen.
 */
export function withoutRestartsDuringUpdate(actions: readonly Action[], st: ControlState, updaters: ReadonlyMap<string, RollingUpdate>): Action[] {
  const working = (serviceId: string): boolean => {
    const u = updaters.get(serviceId);
    return u !== undefined && (u.state === 'updating' || u.state === 'rollback_started');
  };
  const held = new Set<string>();
  for (const a of actions) {
    if (a.type !== 'shutdownTask' || a.reason !== 'restarting') continue;
    const t = st.tasks.get(a.taskId);
    if (t && working(t.serviceId)) held.add(a.taskId);
  }
  if (!held.size) return [...actions];
  return actions.filter((a) => !(a.type === 'shutdownTask' && held.has(a.taskId)) && !(a.type === 'createTask' && a.replaces !== undefined && held.has(a.replaces)));
}

/** One reconcile step; returns when reconcile wants to run again (restart delays), if at all. */
export function step(st: ControlState, ctx: StepContext): number | undefined {
  // 1. liveness
  for (const n of st.nodes.values()) {
    const want: NodeState = n.id === ctx.selfId ? 'ready' : nodeStateFrom(ctx.liveness(n.hostname), n.createdAt, ctx, ctx.stateAge?.(n.hostname));
    if (n.state !== want) st.putNode({ ...n, state: want, updatedAt: ctx.now });
  }
  // 1b. stops that can no longer be confirmed: a task told to shut down whose node went down
  // before it reported (with the down grace, a dead node keeps getting orders for a while)
  // is orphaned, as a shutdown issued to an already-down node is, so a rolling update waiting
  // for its taskStopped goes on instead of waiting for a node that may never return.
  const lostStops = orphanLostStops(st, ctx.now);
  // 2. orchestrate
  const updating = new Set([...ctx.updaters].filter(([, u]) => ACTIVE.has(u.state)).map(([id]) => id));
  // A canary is held while its record has `canary` (set with it, cleared on promote, rollback,
  // pause or completion): the store says so, also right after a manager loss.
  const canaryHeld = new Set([...st.services.values()].filter((s) => s.canary !== undefined).map((s) => s.id));
  const r = reconcile({
    services: [...st.services.values()].map(coreService), nodes: [...st.nodes.values()], tasks: [...st.tasks.values()],
    now: ctx.now, newId: ctx.newId, updating, canaryHeld,
  });
  const actions = withoutRestartsDuringUpdate(r.actions, st, ctx.updaters);
  const events = [...lostStops, ...applyActions(st, actions, ctx)];
  for (const id of updating) events.push(...replacementEvents(actions, id).map((ev) => ({ serviceId: id, ev })));
  pumpUpdaters(st, events, ctx);
  // 3. schedule
  scheduleTasks(st, ctx.now);
  return r.nextDeadline;
}

/** True when the task's node is down or removed: its task can no longer report that it stopped. */
function nodeLost(st: ControlState, t: TaskRecord): boolean {
  const node = t.nodeId === undefined ? undefined : st.nodes.get(t.nodeId);
  return !node || node.state === 'down';
}

/** Orphans tasks whose stop was ordered but whose node is now down or gone; returns their update events. */
export function orphanLostStops(st: ControlState, now: number): Array<{ serviceId: string; ev: UpdateEvent }> {
  const events: Array<{ serviceId: string; ev: UpdateEvent }> = [];
  for (const t of [...st.tasks.values()]) {
    if (t.desiredState !== 'shutdown' || isTerminal(t.state) || t.nodeId === undefined || !nodeLost(st, t)) continue;
    if (t.state === 'new' || t.state === 'pending') continue; // never sent to the node: applyActions released it
    const next: TaskRecord = { ...t, state: 'orphaned', timestamps: { ...t.timestamps, updated: now } };
    st.putTask(next);
    for (const ev of eventsForTaskChange(t, next)) events.push({ serviceId: t.serviceId, ev });
  }
  return events;
}

/**
 * Places pending tasks with the cluster's strategy (`cluster update --strategy`; `random`
 * draws from `rng`) and gives them addresses; unschedulable ones keep a reason.
 */
export function scheduleTasks(st: ControlState, now: number, rng: () => number = Math.random): void {
  const pending = [...st.tasks.values()].filter((t) => t.state === 'pending' && t.desiredState !== 'shutdown');
  if (!pending.length) return;
  const nodes: Node[] = [...st.nodes.values()];
  const res = schedule(pending, nodes, [...st.tasks.values()] as Task[], { now, strategy: st.settings.strategy, rng });
  for (const a of res.assignments) {
    const t = st.tasks.get(a.taskId)!;
    const names = addressNetworks(t.spec);
    const netIds = names.map((n) => st.networkByName(n)?.id);
    if (netIds.some((x) => x === undefined)) {
      if (t.message !== `network missing: ${names.join(',')}`) st.putTask({ ...t, message: `network missing: ${names.join(',')}` });
      continue;
    }
    try {
      const { addresses, addresses6 } = st.allocateTask(t, netIds as string[]);
      st.putTask({ ...t, nodeId: a.nodeId, state: 'assigned', addresses, addresses6, released: false, message: 'assigned', timestamps: { ...t.timestamps, updated: now } });
    } catch (e) {
      st.putTask({ ...t, message: `no address: ${(e as Error).message}` });
    }
  }
  for (const u of res.unschedulable) {
    const t = st.tasks.get(u.taskId);
    if (t && t.message !== u.reason) st.putTask({ ...t, message: u.reason });
  }
}
