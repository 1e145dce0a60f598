/**
 * reconcile(): desired services vs actual nodes and tasks → actions (swarmkit's
 * replicated, global, restart and task-reaper orchestrators folded into one pure,
 * stateless pass). The manager applies the actions, then calls again on every store
 * change and at `nextDeadline` (pending restart delays).
 *
 * - Replicated: slots 1..replicas each want one task whose desired state is not
 *   shutdown. Scale down removes slots whose task is not running first, then those on
 *   the nodes holding the most tasks of the service, then the highest slot numbers.
 * - Global: one task per node that is ready, active and satisfies the constraints;
 *   paused nodes keep theirs; drained, down, removed or no-longer-matching nodes lose it.
 * - A task on a node that is down (gossip) or drained is shut down and its slot gets
 *   a replacement at once (not the task's fault: no restart policy, no delay).
 * - A task that ended while desired running is restarted per its service's restart
 *   policy (condition, delay from when it ended, max attempts within window).
 * - Task history: at most `historyLimit` tasks per slot (or per node for global);
 *   the oldest dead ones (desired shutdown and terminal, or on a lost node) are removed.
 * - Tasks of services that no longer exist are shut down, then removed.
 *
 * Slots with more than one live task are left alone while the service is in
 * `updating` or holds a canary (start-first updates and canaries run two tasks in a slot on purpose).
 *
 * A replacement (restart, node loss) is made from the service's current spec, except while the
 * service holds a canary (`canaryHeld`): then it runs the spec version of the task it replaces
 * (swarmkit#1045's rule for a canary: the slots outside it keep the old spec until it is
 * promoted). Otherwise an old task that died would come back as one more canary, and the canary's
 * share of connections would grow by itself; its slot is rolled by `--canary-complete`, or keeps
 * the old spec on rollback, like every other old slot.
 */
import { compileConstraints } from '../scheduler/constraint.js';
import { nodeRuntimes, resolveRuntime } from '../spec/runtime.js';
import type { Node, Service, Task, TaskSpec } from '../spec/types.js';
import { isGlobal, isTerminal, replicasOf, taskSpecOf } from '../spec/types.js';
import type { Action } from './actions.js';
import { restartDecision } from './restart.js';

/** swarmkit's default task-history-limit. */
export const DEFAULT_HISTORY_LIMIT = 5;

export interface ReconcileInput {
  services: readonly Service[];
  nodes: readonly Node[];
  tasks: readonly Task[];
  now: number;
  /** Fresh unique task ids (injected: the core has no randomness of its own). */
  newId: () => string;
  historyLimit?: number;
  /** Services with a rolling update in progress. */
  updating?: ReadonlySet<string>;
  /**
   * Services holding a canary (started, not yet promoted or rolled back; the manager's record
   * says so): a task they lose is replaced with its own spec version, not the current one.
   */
  canaryHeld?: ReadonlySet<string>;
}

export interface ReconcileResult {
  actions: Action[];
  /** When a delayed restart falls due (call reconcile again then); undefined if none. */
  nextDeadline: number | undefined;
}

/** Desired not shutdown: the task holds (or will hold) its slot. */
export function isLive(t: Task): boolean {
  return t.desiredState !== 'shutdown';
}

/** Why a node can no longer keep tasks, or null when it can. */
export function nodeLossReason(node: Node | undefined): string | null {
  if (!node) return 'node removed';
  // `disconnected`: dead in gossip but inside the down grace — its tasks stay (they may serve).
  if (node.state === 'down') return 'node down';
  if (node.availability === 'drain') return 'node drained';
  return null;
}

/** A new pending task of `service` (slot for replicated, nodeId for global). */
export function newTask(service: Service, spec: TaskSpec, id: string, now: number, where: { slot?: number; nodeId?: string; restarts?: number[] }): Task {
  return {
    id,
    serviceId: service.id,
    slot: where.slot,
    nodeId: where.nodeId,
    specVersion: service.version,
    spec,
    desiredState: 'running',
    state: 'pending',
    timestamps: { created: now, updated: now },
    restarts: where.restarts,
  };
}

class Pass {
  readonly actions: Action[] = [];
  deadline: number | undefined;
  private readonly shut = new Set<string>();
  constructor(readonly input: ReconcileInput, readonly nodes: ReadonlyMap<string, Node>) {}

  shutdown(t: Task, reason: string): void {
    if (this.shut.has(t.id)) return;
    this.shut.add(t.id);
    this.actions.push({ type: 'shutdownTask', taskId: t.id, reason });
  }
  create(task: Task, replaces?: string): void {
    this.actions.push(replaces === undefined ? { type: 'createTask', task } : { type: 'createTask', task, replaces });
  }
  wake(at: number): void {
    if (this.deadline === undefined || at < this.deadline) this.deadline = at;
  }

  /** Keeps the best of several live tasks in one slot/node: on the current spec, running, newest. */
  dedupe(live: Task[], service: Service): Task[] {
    if (live.length <= 1 || this.input.updating?.has(service.id) || this.input.canaryHeld?.has(service.id)) return live;
    const cur = (t: Task): number => Number(t.specVersion === service.version);
    const sorted = [...live].sort((a, b) =>
      cur(b) - cur(a) || Number(b.state === 'running') - Number(a.state === 'running') || b.timestamps.created - a.timestamps.created);
    for (const t of sorted.slice(1)) this.shutdown(t, 'duplicate task in slot');
    return sorted.slice(0, 1);
  }

  /**
   * What replaces `t`: the service's current spec, or `t`'s own spec version while the service
   * holds a canary (a slot keeps its version until the canary is promoted; see the header).
   */
  replacementOf(t: Task, service: Service, spec: TaskSpec): [Service, TaskSpec] {
    if (!this.input.canaryHeld?.has(service.id) || t.specVersion === service.version) return [service, spec];
    return [{ ...service, version: t.specVersion }, t.spec];
  }

  /** Node lost → replace now; ended → restart policy. */
  heal(t: Task, service: Service, current: TaskSpec, where: { slot?: number; nodeId?: string }, replaceOnLoss: boolean): void {
    const [svc, spec] = this.replacementOf(t, service, current);
    if (t.nodeId !== undefined) {
      const why = nodeLossReason(this.nodes.get(t.nodeId));
      if (why) {
        this.shutdown(t, why);
        if (replaceOnLoss) this.create(newTask(svc, spec, this.input.newId(), this.input.now, { ...where, restarts: t.restarts }), t.id);
        return;
      }
    }
    if (t.desiredState !== 'running' || !isTerminal(t.state)) return;
    const d = restartDecision(service.spec.restartPolicy, t, this.input.now);
    if (!d.restart) {
      if (d.retryAt !== undefined) this.wake(d.retryAt);
      return;
    }
    if (d.at > this.input.now) {
      this.wake(d.at);
      return;
    }
    this.shutdown(t, 'restarting');
    this.create(newTask(svc, spec, this.input.newId(), this.input.now, { ...where, restarts: d.history }), t.id);
  }

  replicated(service: Service, tasks: Task[]): void {
    const spec = taskSpecOf(service.spec);
    const bySlot = new Map<number, Task[]>();
    for (const t of tasks) {
      if (!isLive(t)) continue;
      if (t.slot === undefined) {
        this.shutdown(t, 'task without slot');
        continue;
      }
      const l = bySlot.get(t.slot);
      if (l) l.push(t);
      else bySlot.set(t.slot, [t]);
    }
    const want = replicasOf(service.spec);
    if (bySlot.size > want) {
      const perNode = new Map<string, number>();
      for (const l of bySlot.values()) for (const t of l) if (t.nodeId) perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
      const rank = (slot: number): [number, number, number] => {
        const l = bySlot.get(slot)!;
        const running = l.some((t) => t.state === 'running') ? 1 : 0;
        const load = Math.max(0, ...l.map((t) => (t.nodeId ? perNode.get(t.nodeId) ?? 0 : 0)));
        return [running, -load, -slot];
      };
      const victims = [...bySlot.keys()]
        .map((s) => ({ s, r: rank(s) }))
        .sort((a, b) => a.r[0] - b.r[0] || a.r[1] - b.r[1] || a.r[2] - b.r[2])
        .slice(0, bySlot.size - want);
      for (const { s } of victims) {
        for (const t of bySlot.get(s)!) this.shutdown(t, 'scale down');
        bySlot.delete(s);
      }
    }
    for (const [slot, live] of bySlot) {
      for (const t of this.dedupe(live, service)) this.heal(t, service, spec, { slot }, true);
    }
    let next = 1;
    for (let missing = want - bySlot.size; missing > 0; missing--) {
      while (bySlot.has(next)) next++;
      this.create(newTask(service, spec, this.input.newId(), this.input.now, { slot: next }));
      next++;
    }
  }

  global(service: Service, tasks: Task[]): void {
    const spec = taskSpecOf(service.spec);
    const matches = compileConstraints(service.spec.constraints);
    // A node without the service's runtime gets no task (rather than one that waits forever).
    // Unlike a constraint, a running task is not taken away when the node stops reporting the
    // runtime: one failed detection (a busy dockerd) must not stop a node's containers.
    const runtime = resolveRuntime(spec);
    const byNode = new Map<string, Task[]>();
    for (const t of tasks) {
      if (!isLive(t)) continue;
      if (t.nodeId === undefined || !this.nodes.has(t.nodeId)) {
        this.shutdown(t, 'node removed');
        continue;
      }
      const l = byNode.get(t.nodeId);
      if (l) l.push(t);
      else byNode.set(t.nodeId, [t]);
    }
    for (const node of this.nodes.values()) {
      const live = byNode.get(node.id) ?? [];
      const lost = nodeLossReason(node) ?? (matches(node) ? null : 'node no longer satisfies constraints');
      if (lost) {
        for (const t of live) this.shutdown(t, lost);
        continue;
      }
      for (const t of this.dedupe(live, service)) this.heal(t, service, spec, { nodeId: node.id }, false);
      if (live.length === 0 && node.availability === 'active' && nodeRuntimes(node).includes(runtime)) {
        this.create(newTask(service, spec, this.input.newId(), this.input.now, { nodeId: node.id }));
      }
    }
  }

  /** Task-history retention: per slot/node keep at most `limit` tasks, dropping the oldest dead. */
  reap(tasks: readonly Task[], services: ReadonlyMap<string, Service>, limit: number): void {
    const byKey = new Map<string, Task[]>();
    for (const t of tasks) {
      const dead = t.desiredState === 'shutdown' && (isTerminal(t.state) || (t.nodeId !== undefined && nodeLossReason(this.nodes.get(t.nodeId)) !== null) || t.nodeId === undefined);
      if (!services.has(t.serviceId)) {
        if (dead) this.actions.push({ type: 'removeTask', taskId: t.id });
        else if (isLive(t)) this.shutdown(t, 'service removed');
        continue;
      }
      const k = t.slot !== undefined ? `${t.serviceId}\u0000s${t.slot}` : `${t.serviceId}\u0000n${t.nodeId ?? ''}`;
      const l = byKey.get(k);
      if (l) l.push(t);
      else byKey.set(k, [t]);
    }
    for (const l of byKey.values()) {
      if (l.length <= limit) continue;
      const dead = l
        .filter((t) => t.desiredState === 'shutdown' && (isTerminal(t.state) || t.nodeId === undefined || nodeLossReason(this.nodes.get(t.nodeId)) !== null))
        .sort((a, b) => a.timestamps.created - b.timestamps.created);
      for (const t of dead.slice(0, l.length - limit)) this.actions.push({ type: 'removeTask', taskId: t.id });
    }
  }
}

/** One reconciliation pass. Apply `actions` before calling again. */
export function reconcile(input: ReconcileInput): ReconcileResult {
  const nodes = new Map(input.nodes.map((n) => [n.id, n] as const));
  const services = new Map(input.services.map((s) => [s.id, s] as const));
  const byService = new Map<string, Task[]>();
  for (const t of input.tasks) {
    const l = byService.get(t.serviceId);
    if (l) l.push(t);
    else byService.set(t.serviceId, [t]);
  }
  const pass = new Pass(input, nodes);
  for (const s of input.services) {
    const tasks = byService.get(s.id) ?? [];
    if (isGlobal(s.spec)) pass.global(s, tasks);
    else pass.replicated(s, tasks);
  }
  pass.reap(input.tasks, services, Math.max(1, input.historyLimit ?? DEFAULT_HISTORY_LIMIT));
  return { actions: pass.actions, nextDeadline: pass.deadline };
}
