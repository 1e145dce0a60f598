/**
 * Types of the embedded DNS server (server.ts): its options, what it listens on, the tag of a
 * sandbox's attached sockets, and which UDP path serves it.
 */
import type { Rng } from '../../core/clock.js';
import type { Clock } from '../../core/clock.js';
import type { DnsRegistry } from '../../core/dns/registry.js';
import type { Upstream } from './forwarder.js';
import type { NetworksOf } from './handler.js';
import type { UdpPathChoice } from './native-udp.js';

export interface ListenAddress {
  readonly address: string;
  /** 0 = ephemeral (the same number for UDP and TCP). */
  readonly port: number;
}

export interface DnsServerOptions {
  readonly registry: DnsRegistry;
  /** Where to listen, UDP and TCP on each (default 127.0.0.1:53). */
  readonly listen?: readonly ListenAddress[];
  readonly networksOf?: NetworksOf;
  readonly defaultNetworks?: readonly string[];
  readonly ttlSec?: number;
  readonly maxUdpPayload?: number;
  readonly cacheMaxEntries?: number;
  /** Upstream resolvers; when absent, read from `resolvConfPath`. Our own listen addresses are skipped. */
  readonly upstreams?: readonly Upstream[];
  /** resolv.conf to read upstreams from when `upstreams` is absent (default none: no forwarding). */
  readonly resolvConfPath?: string;
  readonly forwardTimeoutMs?: number;
  readonly maxPendingForwards?: number;
  /** Max simultaneous TCP connections (default 256). */
  readonly maxTcpConnections?: number;
  /** Close idle TCP connections after this many ms (default 10 000). */
  readonly tcpIdleTimeoutMs?: number;
  /** Socket receive buffer for UDP (bytes, default 4 MiB: absorbs bursts). */
  readonly udpRecvBufferBytes?: number;
  readonly rng?: Rng;
  /** Clock for `explain` ages (default the process monotonic clock; must match the registry's `now`). */
  readonly clock?: Clock;
  /**
   * Processes serving the UDP sockets, this one included (default 1: no extra process). N > 1 forks N − 1
   * DNS workers (workers.ts) that read the same sockets; `maxPendingForwards` is then split between the
   * processes (⌈max / N⌉ each). TCP is served by this process only.
   */
  readonly workers?: number;
  /** How often workers pick up registry changes, ms (default 20). */
  readonly workerSyncMs?: number;
  /** How often workers report counters, ms (default 1000). */
  readonly workerStatsMs?: number;
  /** Worker trouble (start failures, exits, respawns): for the agent's log. */
  readonly onWorkerEvent?: (event: string, detail: Record<string, unknown>) => void;
  /**
   * UDP receive/send path (native-udp.ts): `auto` (default) runs the native batched path when its addon
   * loads, else dgram; `native` requires the addon (MESHD_BAD_CONFIG otherwise); `js` is dgram only.
   */
  readonly udp?: UdpPathChoice;
}

/** Which UDP path serves this server's sockets, and how many sockets each path took. */
export interface UdpPathReport {
  readonly path: 'native' | 'js';
  readonly reason: string;
  readonly sockets: { native: number; js: number };
  /** Why the last socket that could not go native fell back to dgram (undefined: none did). */
  readonly lastFallback: string | undefined;
}

/** Networks of the sandbox a set of attached sockets lives in (mutable holder; see attachSandbox). */
export interface SandboxTag {
  /** undefined = not known yet: the server's `networksOf` decides (REFUSED by default in the agent). */
  networks: readonly string[] | undefined;
}
