/**
 * The overlay's state machine on one node (pure; time injected). The agent feeds it
 * gossip table events (remote endpoints, members) and its own task assignments (local
 * endpoints, network definitions); it answers with `reconcile` actions carrying the full
 * input for OverlayReconciler. It never remembers what the kernel holds: every action is
 * the complete desired input, and the edge diffs against the kernel.
 *
 * Timing: bursts of events are coalesced (`debounceMs`), a periodic resync (`resyncMs`)
 * repairs drift nobody told us about, and a failed reconcile is retried with exponential
 * backoff (`retryMinMs` doubling up to `retryMaxMs`).
 *
 * Lazy sandboxes: a network is hosted on this node only while it has a local endpoint
 * (or was attached explicitly, e.g. an attachable network); otherwise its sandbox goes.
 */
import { MeshError } from '../errors.js';
import type { LocalEndpoint, OverlayNetwork, RemoteEndpoint } from './model.js';

export interface OverlayTimers {
  /** Coalescing delay after an event before reconciling (ms). */
  debounceMs: number;
  /** Periodic full reconcile even without events (ms). */
  resyncMs: number;
  retryMinMs: number;
  retryMaxMs: number;
}

export const DEFAULT_OVERLAY_TIMERS: OverlayTimers = { debounceMs: 50, resyncMs: 30_000, retryMinMs: 500, retryMaxMs: 30_000 };

export type OverlayEvent =
  | { type: 'network-define'; network: OverlayNetwork }
  | { type: 'network-forget'; networkId: string }
  /** Explicit attach (attachable networks); local endpoints attach implicitly. */
  | { type: 'network-attach'; networkId: string }
  | { type: 'network-detach'; networkId: string }
  | { type: 'local-add'; taskId: string; endpoint: LocalEndpoint }
  | { type: 'local-remove'; taskId: string }
  | { type: 'remote-add'; key: string; endpoint: RemoteEndpoint }
  | { type: 'remote-remove'; key: string }
  | { type: 'members'; underlayIps: readonly string[] };

export interface ReconcileInput {
  networks: OverlayNetwork[];
  remote: RemoteEndpoint[];
  members: string[];
}

export type OverlayAction = { type: 'reconcile'; input: ReconcileInput; reason: 'event' | 'resync' | 'retry' };

/** Exponential backoff: min · 2^(attempt−1), capped at max. attempt ≥ 1. */
export function retryDelayMs(attempt: number, minMs: number, maxMs: number): number {
  if (!(attempt >= 1)) return minMs;
  return Math.min(maxMs, minMs * 2 ** Math.min(attempt - 1, 30));
}

export class OverlayState {
  private readonly networks = new Map<string, OverlayNetwork>();
  private readonly attached = new Set<string>();
  private readonly local = new Map<string, LocalEndpoint>();
  private readonly remote = new Map<string, RemoteEndpoint>();
  private members: string[] = [];
  private dueAt: number | null = null;
  private dueReason: OverlayAction['reason'] = 'event';
  private nextResync: number;
  private inFlight = false;
  private failures = 0;
  private readonly out: OverlayAction[] = [];

  constructor(now: number, private readonly timers: OverlayTimers = DEFAULT_OVERLAY_TIMERS) {
    // Reconcile at start: an agent restart repairs from the kernel at once.
    this.dueAt = now;
    this.dueReason = 'resync';
    this.nextResync = now + timers.resyncMs;
  }

  handle(ev: OverlayEvent, now: number): void {
    switch (ev.type) {
      case 'network-define':
        this.networks.set(ev.network.id, ev.network);
        break;
      case 'network-forget':
        // Its remote endpoints go with it: once we leave a network, gossip no longer tells us about
        // its entries, so a remote kept here would be programmed again, stale, when the network is
        // defined anew (a task lands here again) and would never be removed (chaos seed 13).
        this.networks.delete(ev.networkId);
        this.attached.delete(ev.networkId);
        for (const [k, e] of this.remote) if (e.network === ev.networkId) this.remote.delete(k);
        break;
      case 'network-attach':
        this.attached.add(ev.networkId);
        break;
      case 'network-detach':
        this.attached.delete(ev.networkId);
        break;
      case 'local-add':
        this.local.set(ev.taskId, ev.endpoint);
        break;
      case 'local-remove':
        this.local.delete(ev.taskId);
        break;
      case 'remote-add':
        this.remote.set(ev.key, ev.endpoint);
        break;
      case 'remote-remove':
        this.remote.delete(ev.key);
        break;
      case 'members':
        this.members = [...new Set(ev.underlayIps)].sort();
        break;
      default:
        throw new MeshError('MESHD_BAD_ARGUMENT', `unknown overlay event ${(ev as { type: string }).type}`);
    }
    // While failing, the scheduled retry (backoff) carries the new input; do not hammer.
    if (this.failures > 0 && this.dueAt !== null) return;
    const at = now + this.timers.debounceMs;
    if (this.dueAt === null || at < this.dueAt) {
      this.dueAt = at;
      this.dueReason = 'event';
    }
  }

  /** Networks hosted here: defined and (attached or holding a local endpoint). */
  hosted(): OverlayNetwork[] {
    const want = new Set([...this.attached, ...[...this.local.values()].map((e) => e.network)]);
    return [...this.networks.values()].filter((n) => want.has(n.id)).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  input(): ReconcileInput {
    return {
      networks: this.hosted(),
      remote: [...this.remote.values()],
      members: [...this.members],
    };
  }

  tick(now: number): void {
    if (this.inFlight) return;
    if (now >= this.nextResync && (this.dueAt === null || this.dueAt > now)) {
      this.dueAt = now;
      this.dueReason = 'resync';
    }
    if (this.dueAt !== null && now >= this.dueAt) {
      this.out.push({ type: 'reconcile', input: this.input(), reason: this.dueReason });
      this.inFlight = true;
      this.dueAt = null;
    }
  }

  /** Report the outcome of the last drained reconcile action. */
  reconciled(ok: boolean, now: number): void {
    this.inFlight = false;
    if (ok) {
      this.failures = 0;
      this.nextResync = now + this.timers.resyncMs;
      return;
    }
    this.failures++;
    const at = now + retryDelayMs(this.failures, this.timers.retryMinMs, this.timers.retryMaxMs);
    if (this.dueAt === null || at < this.dueAt) {
      this.dueAt = at;
      this.dueReason = 'retry';
    }
  }

  /** Earliest time tick() has something to do; null while a reconcile is in flight. */
  nextDeadline(): number | null {
    if (this.inFlight) return null;
    return this.dueAt === null ? this.nextResync : Math.min(this.dueAt, this.nextResync);
  }

  drain(): OverlayAction[] {
    return this.out.splice(0);
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}
