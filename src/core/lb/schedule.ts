/**
 * When the agent's load balancer applies what (the policy src/agent/lb/lb.ts used to keep on its
 * own timers), as a pure state machine fed events and `now` (quinn-proto's model, like
 * core/gossip/swim.ts): the shell feeds it events, runs its actions (namespace syncs through the
 * one ReconcileLoop, drift checks, overlay polls) and arms one timer for `nextDeadline()`.
 *
 * - Nothing is applied before the overlay is active and has reconciled once (polled every
 *   `activePollMs`): the kernel keeps the old rules meanwhile. Activation syncs every namespace at
 *   once (the first apply per namespace is a full, atomic replace from the re-synced tables);
 *   changes seen before it are covered by that and dropped.
 * - After activation a change syncs its namespaces after `debounceMs` (a burst of table events
 *   coalesces into one transaction per namespace); a failed sync is retried after `retryMs`
 *   (the loop's back-off, fixed: `lbLoopConfig`). Under sustained churn the loop paces its runs
 *   (LB_MAX_DUTY): each run is one `nft -f` per dirty namespace, and back-to-back runs every
 *   `debounceMs` made a node under 100 changes/s spawn ~30 of them a second per namespace.
 * - Every `checkMs` after the previous check finished, the kernel is read back (the safety net);
 *   the check's result resyncs at once the namespaces it names, and the host namespace always
 *   (host-mode plumbing is re-verified). A check that took long spaces the next one out
 *   (`nextCheckDelayMs`): the safety net never takes more than a tenth of the node's time.
 */
import type { LoopConfig } from '../reconcile/loop.js';

/** The ingress sandbox's namespace (routing mesh). */
export const INGRESS_NS: unique symbol = Symbol('lb:ingress');
/** The node's own namespace (host publish mode). */
export const HOST_NS: unique symbol = Symbol('lb:host');
/**
 * What the LB applies one transaction to: a local task's namespace (keyed by its task id) or one
 * of the two node-wide namespaces (symbols: no task id can equal them, no string prefix to parse).
 */
export type NsKey = typeof INGRESS_NS | typeof HOST_NS | string;

/** For logs and status: `ingress`, `host`, or `task <id>`. */
export function describeNs(k: NsKey): string {
  return k === INGRESS_NS ? 'ingress' : k === HOST_NS ? 'host' : `task ${k}`;
}

export interface LbScheduleConfig {
  /** Burst coalescing of changes (ms). */
  debounceMs: number;
  /** Retry delay of a failed namespace sync (ms; fixed, no doubling). */
  retryMs: number;
  /** Kernel drift check and plumbing repair period (ms), counted from the end of the last check. */
  checkMs: number;
  /** How often readiness of the overlay is polled before activation (ms). */
  activePollMs: number;
  /** Largest share of wall time apply runs may take under sustained churn (LB_MAX_DUTY; 1 = no pacing). */
  maxApplyDuty?: number;
}

export const DEFAULT_LB_SCHEDULE: LbScheduleConfig = { debounceMs: 30, retryMs: 1000, checkMs: 10_000, activePollMs: 100 };

/**
 * Share of wall time the drift check may take. Each check execs two read-backs per namespace;
 * under a starved host (qemu TCG: 0.1-1.5 s per exec; a loaded 2-core machine) a fixed 10 s
 * period let the checks alone eat the CPU the tasks needed to start (issue 14's VM mesh runs:
 * `nft -j list`, `ip -j`, `ipvsadm -S` topped the guest's process samples). kube-proxy bounds its
 * syncs the same way (a minimum sync period); here the bound follows the measured cost.
 */
export const CHECK_MAX_DUTY = 0.1;

/**
 * Delay from the end of one drift check to the start of the next (ms): `checkMs`, or longer when
 * the last check took `lastCheckMs` — so that checking takes at most CHECK_MAX_DUTY of the time.
 * A negative or NaN duration (clock step) counts as 0.
 */
export function nextCheckDelayMs(checkMs: number, lastCheckMs: number): number {
  const d = Number.isFinite(lastCheckMs) && lastCheckMs > 0 ? lastCheckMs : 0;
  return Math.max(checkMs, Math.ceil(d * (1 / CHECK_MAX_DUTY - 1)));
}

/**
 * Share of wall time the LB's apply runs may take under sustained churn (core/reconcile/loop.ts pacing):
 * after a run of d ms the next starts ≥ 3d later (at most LB_MAX_PACE_MS), and the changes of that gap go
 * in one transaction per namespace. A lone change is not delayed (its run follows `debounceMs` after it).
 */
export const LB_MAX_DUTY = 0.25;
/** Ceiling of that gap (ms): bounds what pacing adds to a change's latency on a starved node. */
export const LB_MAX_PACE_MS = 250;

/**
 * The reconcile loop's config for the LB: a failed sync is retried after `retryMs`, every time; runs are
 * paced (`maxApplyDuty`, default LB_MAX_DUTY).
 */
export function lbLoopConfig(cfg: LbScheduleConfig): LoopConfig {
  return { minBackoffMs: cfg.retryMs, maxBackoffMs: cfg.retryMs, maxDuty: cfg.maxApplyDuty ?? LB_MAX_DUTY, maxPaceMs: LB_MAX_PACE_MS };
}

/** A record of the `endpoints` table changed (stored, replaced or deleted). */
export interface TableChange {
  network: string;
  /** Node owning the record. */
  node: string;
  taskId: string;
}

/**
 * Namespaces a record change affects: the ingress sandbox for a record on `ingress`; every local
 * task on the record's network (its VIP services changed); and for a record of THIS node's task,
 * its own namespace, the host namespace (host-mode publishes), and the ingress sandbox if the task
 * asked for an ingress attachment.
 */
export function keysOfTableChange(c: TableChange, ctx: { nodeName: string; ingressNetwork: string; localTasksOn: Iterable<string>; attachesIngress: boolean }): NsKey[] {
  const out = new Set<NsKey>();
  if (c.network === ctx.ingressNetwork) out.add(INGRESS_NS);
  for (const t of ctx.localTasksOn) out.add(t);
  if (c.node === ctx.nodeName) {
    if (c.network !== ctx.ingressNetwork) out.add(HOST_NS);
    out.add(c.taskId);
    if (ctx.attachesIngress) out.add(INGRESS_NS);
  }
  return [...out];
}

export type LbEvent =
  /** The subsystem started: poll the overlay's readiness now. */
  | { type: 'start' }
  /** Answer to a `poll-overlay` action. `keys`: every namespace to sync on activation. */
  | { type: 'overlay'; ready: boolean; keys: readonly NsKey[] }
  /** Something changed for these namespaces (table records, overlay progress, ingress config). */
  | { type: 'changed'; keys: readonly NsKey[] }
  /** A drift check finished; `resync`: namespaces to resync at once (drifted, ingress plumbing). */
  | { type: 'checked'; resync: readonly NsKey[] }
  | { type: 'stop' };

export type LbAction =
  /** Mark these namespaces dirty in the reconcile loop, due in `delayMs`. */
  | { type: 'sync'; keys: NsKey[]; delayMs: number }
  /** Run a drift check, then feed `checked`. */
  | { type: 'check' }
  /** Read the overlay's readiness, then feed `overlay`. */
  | { type: 'poll-overlay' };

export class LbSchedule {
  private phase: 'idle' | 'waiting' | 'active' | 'stopped' = 'idle';
  private pollAt: number | undefined;
  private checkAt: number | undefined;
  /** When the running check was emitted (its cost spaces out the next one). */
  private checkStartedAt: number | undefined;
  private actions: LbAction[] = [];

  constructor(private readonly cfg: LbScheduleConfig = DEFAULT_LB_SCHEDULE) {}

  /** True once the overlay was ready (and until stop): the LB applies. */
  get active(): boolean {
    return this.phase === 'active';
  }

  handle(ev: LbEvent, now: number): void {
    if (this.phase === 'stopped' && ev.type !== 'start') return;
    switch (ev.type) {
      case 'start':
        this.phase = 'waiting';
        this.checkAt = undefined;
        this.pollAt = undefined;
        this.actions.push({ type: 'poll-overlay' });
        return;
      case 'overlay':
        if (this.phase !== 'waiting') return;
        if (!ev.ready) {
          this.pollAt = now + this.cfg.activePollMs;
          return;
        }
        this.phase = 'active';
        this.sync(ev.keys, 0);
        this.checkAt = now + this.cfg.checkMs;
        return;
      case 'changed':
        if (this.phase === 'active') this.sync(ev.keys, this.cfg.debounceMs);
        return;
      case 'checked':
        if (this.phase !== 'active') return;
        this.sync(ev.resync, 0);
        this.checkAt = now + nextCheckDelayMs(this.cfg.checkMs, this.checkStartedAt === undefined ? 0 : now - this.checkStartedAt);
        this.checkStartedAt = undefined;
        return;
      case 'stop':
        this.phase = 'stopped';
        this.pollAt = this.checkAt = undefined;
        this.actions = [];
        return;
    }
  }

  /** Emits what is due at `now` (an overlay poll, a drift check). */
  tick(now: number): void {
    if (this.pollAt !== undefined && this.pollAt <= now) {
      this.pollAt = undefined;
      this.actions.push({ type: 'poll-overlay' });
    }
    if (this.checkAt !== undefined && this.checkAt <= now) {
      this.checkAt = undefined; // re-armed by `checked`: checks never overlap
      this.checkStartedAt = now;
      this.actions.push({ type: 'check' });
    }
  }

  /** When `tick` has something to do next (undefined: nothing until an event). */
  nextDeadline(): number | undefined {
    if (this.pollAt === undefined) return this.checkAt;
    if (this.checkAt === undefined) return this.pollAt;
    return Math.min(this.pollAt, this.checkAt);
  }

  /** Actions produced since the last drain, in order. */
  drain(): LbAction[] {
    const a = this.actions;
    this.actions = [];
    return a;
  }

  private sync(keys: readonly NsKey[], delayMs: number): void {
    if (keys.length) this.actions.push({ type: 'sync', keys: [...keys], delayMs });
  }
}
