/**
 * Messages between the agent's DnsServer (parent) and its DNS worker processes (worker-main.ts), over the
 * Node IPC channel (JSON; socket handles travel as the message's handle). Kept in one place so both sides
 * agree on the shapes.
 */
import type { RegistrySnapshot } from '../../core/dns/snapshot.js';
import type { Upstream } from './forwarder.js';
import type { DnsServerStats, UdpSocketCounters } from './stats.js';

/** What a worker needs to build its own DnsHandler (mirrors DnsServerOptions). */
export interface WorkerInit {
  readonly ttlSec: number;
  readonly maxUdpPayload: number;
  readonly cacheMaxEntries: number | undefined;
  readonly upstreams: readonly Upstream[];
  readonly forwardTimeoutMs: number | undefined;
  /** This worker's share of the node-wide bound (perWorkerPendingBound). */
  readonly maxPendingForwards: number;
  /**
   * Networks for queries on a socket shared without networks: `defaultNetworks` when the parent uses its
   * default mapping, or null = REFUSED (the parent has a custom `networksOf`, which cannot cross processes).
   */
  readonly defaultNetworks: readonly string[] | null;
  /** How often the worker reports its counters, ms. */
  readonly statsMs: number;
  /** The parent's UDP path: a worker runs native too when it can load the addon (else JS, reported as an error). */
  readonly udp: 'native' | 'js';
}

export type ToWorker =
  | { readonly t: 'init'; readonly init: WorkerInit }
  | { readonly t: 'snapshot'; readonly snap: RegistrySnapshot }
  /** Serve the attached UDP socket; `networks` as in SandboxTag (null = not known / use the default). */
  | { readonly t: 'udp'; readonly id: number; readonly networks: readonly string[] | null }
  | { readonly t: 'retag'; readonly id: number; readonly networks: readonly string[] | null }
  | { readonly t: 'close-udp'; readonly id: number }
  | { readonly t: 'stats?' }
  | { readonly t: 'stop' };

export type FromWorker =
  | { readonly t: 'ready' }
  /** `sockets`: this worker's view of each socket it serves (what it read and answered), by share id. */
  | { readonly t: 'stats'; readonly stats: DnsServerStats; readonly generation: number; readonly sockets: readonly UdpSocketCounters[] }
  | { readonly t: 'closed-udp'; readonly id: number }
  | { readonly t: 'error'; readonly message: string };
