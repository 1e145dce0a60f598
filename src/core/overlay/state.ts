/**
 * The overlay's desired input on one node (pure). The agent feeds it gossip table events
 * (remote endpoints, members) and its own task assignments (local endpoints, network
 * definitions); `input()` is the complete input for OverlayReconciler. It never remembers what
 * the kernel holds: the edge diffs every input against the kernel.
 *
 * Timing is not decided here: the OverlayService (adapters/netlink/service.ts) runs reconciles
 * through the shared reconcile loop (core/reconcile/loop.ts) with the delays of `OverlayTimers` —
 * bursts of events coalesced (`debounceMs`), a periodic resync (`resyncMs`) that repairs drift
 * nobody told us about, and a failed reconcile retried with a back-off doubling from
 * `retryMinMs` up to `retryMaxMs`.
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
  /**
   * Largest share of wall time reconciles may take under sustained churn (core/reconcile/loop.ts pacing; absent:
   * none). Each event reconcile is at least one `ip`/`bridge` batch process, and a fork of a ~150 MB agent is
   * not cheap: a 10-node lab agent at 100 endpoint changes/s, reconciling back to back, spent ~13 % of its busy
   * time spawning them. A lone change is not delayed (its reconcile follows debounceMs after it).
   */
  maxDuty?: number;
  /** Ceiling of the pacing gap after a reconcile (ms): bounds what pacing adds to a change on a starved node. */
  maxPaceMs?: number;
}

export const DEFAULT_OVERLAY_TIMERS: OverlayTimers = { debounceMs: 50, resyncMs: 30_000, retryMinMs: 500, retryMaxMs: 30_000, maxDuty: 0.25, maxPaceMs: 250 };

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

export class OverlayState {
  private readonly networks = new Map<string, OverlayNetwork>();
  private readonly attached = new Set<string>();
  private readonly local = new Map<string, LocalEndpoint>();
  private readonly remote = new Map<string, RemoteEndpoint>();
  private members: string[] = [];

  handle(ev: OverlayEvent): void {
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
}
