/**
 * Assignments pushed to nodes instead of polled (issue 18 item 1: the agent's 1 s dispatcher poll was
 * most of "manager commit → last node"). A node asks
 *
 *   GET /v1/dispatcher/assignments/watch?known=TOKEN&waitMs=N
 *
 * and gets `{ token, assignments }` at once when its list differs from the one `known` names, else as
 * soon as a committed change makes it differ, else after `waitMs` (the same list: the node asks again).
 * The token is a digest of the list's JSON, so it means the same on every manager: a node that fails
 * over to another manager (or follows the leader) keeps its token and is not sent an unchanged list.
 *
 * Wake-ups come from the store's own watch (`Store.watch`), so a follower on etcd hears the leader's
 * commits as well as the leader does. Only what can change a node's list wakes it: a task record that
 * names the node, its node record, and anything that can change every list (service, network, task
 * deletion — a deleted task does not say whose it was). A woken request recomputes through the control
 * plane's `serialize` (after every change queued before it, like the polled route) and answers only if
 * the list changed; changes that land while it recomputes wake it again (at most one recompute pending
 * per request, so a burst of commits costs one or two recomputes, not one each).
 *
 * A watch that breaks (etcd restarting) wakes everyone and is opened again on the next request; the
 * `waitMs` bound is the backstop for any event a broken stream missed: no list is ever staler than it.
 */
import { createHash } from 'node:crypto';
import type { Store, Unwatch, WatchEvent } from '../../adapters/store/store.js';
import { MeshError } from '../../core/errors.js';
import { KEYS } from '../model.js';
import { assignmentsFor } from './dispatch.js';
import type { ControlHost } from './host.js';
import { CKEYS } from './model.js';
import type { ControlState } from './state.js';

/** Longest a request may wait (ms): well inside the agent's request timeout and any proxy's idle limit. */
export const MAX_WAIT_MS = 30_000;

/** The token of one node's list: a digest of exactly what is sent. */
export function assignmentsToken(json: string): string {
  return createHash('sha256').update(json).digest('base64url').slice(0, 22);
}

/**
 * Which nodes a committed store change may concern (pure): a node id, `'*'` for every node, or
 * undefined for none (keys the lists never read).
 */
export function wakeTarget(ev: Pick<WatchEvent, 'type' | 'key' | 'value'>): string | undefined {
  if (ev.key.startsWith(CKEYS.tasks)) {
    if (ev.type === 'delete') return '*';
    const nodeId = (ev.value as { nodeId?: unknown } | undefined)?.nodeId;
    return typeof nodeId === 'string' ? nodeId : undefined; // not scheduled yet: nobody's list
  }
  if (ev.key.startsWith(CKEYS.services) || ev.key.startsWith(CKEYS.networks)) return '*';
  if (ev.key.startsWith(KEYS.nodes)) return ev.key.slice(KEYS.nodes.length); // hostname and zone label
  return undefined;
}

/** `waitMs` from the query: 0–MAX_WAIT_MS; absent = answer at once. */
export function parseWaitMs(raw: string | null): number {
  if (raw === null) return 0;
  const n = Number(raw);
  if (!/^\d{1,6}$/.test(raw) || !Number.isSafeInteger(n)) throw new MeshError('MESHD_BAD_ARGUMENT', `waitMs must be a whole number of milliseconds, got ${JSON.stringify(raw.slice(0, 20))}`, { field: 'waitMs' });
  return Math.min(n, MAX_WAIT_MS);
}

/** One waiting request: `fired` once something concerning its node committed. */
interface Arm {
  fired: boolean;
  wake: (() => void) | undefined;
}

export interface ArmedWait {
  /** Resolves true when a relevant change committed after `arm` (maybe before this call), false after `ms`. */
  until(ms: number): Promise<boolean>;
  cancel(): void;
}

export class AssignmentWatch {
  private readonly arms = new Map<string, Set<Arm>>();
  private unwatch: Promise<Unwatch[]> | undefined;
  private stopped = false;

  constructor(private readonly store: () => Store, private readonly onError: (e: unknown) => void) {}

  /**
   * Registers interest in `nodeId`'s list BEFORE the caller computes it, so a change that commits
   * between the computation and the wait is not missed. Resolves once the store watch is open.
   */
  async arm(nodeId: string): Promise<ArmedWait> {
    await this.open();
    const a: Arm = { fired: false, wake: undefined };
    let set = this.arms.get(nodeId);
    if (!set) this.arms.set(nodeId, (set = new Set()));
    set.add(a);
    const drop = () => {
      set.delete(a);
      if (!set.size && this.arms.get(nodeId) === set) this.arms.delete(nodeId);
    };
    return {
      until: (ms) => new Promise<boolean>((resolve) => {
        if (a.fired || this.stopped) {
          drop();
          return resolve(a.fired);
        }
        const t = setTimeout(() => {
          a.wake = undefined;
          drop();
          resolve(false);
        }, ms);
        a.wake = () => {
          clearTimeout(t);
          drop();
          resolve(true);
        };
      }),
      cancel: drop,
    };
  }

  /** Waiting requests (for status and tests). */
  waiting(): number {
    let n = 0;
    for (const s of this.arms.values()) n += s.size;
    return n;
  }

  /** Closes the store watch and answers every waiting request (as changed: each recomputes and returns). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.fire('*');
    const u = this.unwatch;
    this.unwatch = undefined;
    if (u) for (const f of await u.catch(() => [])) await f().catch(() => undefined);
  }

  private open(): Promise<Unwatch[]> {
    if (this.stopped) return Promise.resolve([]);
    if (!this.unwatch) {
      const on = (ev: WatchEvent) => {
        const target = wakeTarget(ev);
        if (target !== undefined) this.fire(target);
      };
      const prefixes = [CKEYS.tasks, CKEYS.services, CKEYS.networks, KEYS.nodes];
      this.unwatch = Promise.all(prefixes.map((p) => this.store().watch(p, on, (e) => this.broken(e))));
      // A watch that cannot open fails this request (the node retries); the next request tries again.
      this.unwatch.catch((e: unknown) => {
        this.unwatch = undefined;
        this.onError(e);
      });
    }
    return this.unwatch;
  }

  /** A watch stream broke: everyone recomputes now, and the next request opens a fresh watch. */
  private broken(e: unknown): void {
    const u = this.unwatch;
    this.unwatch = undefined;
    void u?.then((fs) => Promise.all(fs.map((f) => f().catch(() => undefined)))).catch(() => undefined);
    this.fire('*');
    this.onError(e);
  }

  private fire(target: string): void {
    const sets = target === '*' ? [...this.arms.values()] : [this.arms.get(target)].filter((s) => s !== undefined);
    for (const set of sets) {
      for (const a of [...set]) {
        a.fired = true;
        a.wake?.();
      }
    }
  }
}

/** A node's zone label as endpoint records carry it (a DNS-label-sized string), or undefined. */
function zoneLabel(z: string | undefined): string | undefined {
  return z && z.length <= 63 ? z : undefined;
}

/** `nodeId`'s assignment list in the state `st` (what both dispatcher routes send). */
export function nodeAssignments(st: ControlState, nodeId: string): ReturnType<typeof assignmentsFor> {
  return assignmentsFor(nodeId, [...st.tasks.values()], st.services, st.netsByName(), st.nodeName(nodeId), zoneLabel(st.nodes.get(nodeId)?.labels.zone));
}

/**
 * The dispatcher's assignment routes: the plain list (`GET /v1/dispatcher/assignments`, polled by
 * agents older than the watch) and the watch described above.
 */
export function registerAssignmentRoutes(cp: ControlHost, watch: AssignmentWatch): void {
  const m = cp.o.manager;
  m.route('GET', '/v1/dispatcher/assignments', 'node', async (_req, ctx) => ({
    json: await cp.serialize((st) => nodeAssignments(st, ctx.peer!.nodeId)),
  }));
  m.route('GET', '/v1/dispatcher/assignments/watch', 'node', async (req, ctx) => {
    const nodeId = ctx.peer!.nodeId;
    const known = req.query.get('known');
    const waitMs = parseWaitMs(req.query.get('waitMs'));
    const deadline = Date.now() + waitMs;
    for (;;) {
      // Armed before the list is computed: a commit racing the computation still wakes the wait.
      const armed = known !== null && waitMs > 0 ? await watch.arm(nodeId) : undefined;
      let list: ReturnType<typeof assignmentsFor>;
      try {
        list = await cp.serialize((st) => nodeAssignments(st, nodeId));
      } catch (e) {
        armed?.cancel();
        throw e;
      }
      const token = assignmentsToken(JSON.stringify(list));
      const left = deadline - Date.now();
      if (!armed || token !== known || left <= 0) {
        armed?.cancel();
        return { json: { token, assignments: list } };
      }
      if (!(await armed.until(left))) return { json: { token, assignments: list } };
    }
  });
}
