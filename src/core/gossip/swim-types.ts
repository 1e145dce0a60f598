/**
 * Types shared by the SWIM engine (swim.ts) and its stream exchanges (streams.ts), in their own
 * module so that neither imports the other's implementation (no import cycle).
 */
import type { Rng } from '../clock.js';
import type { MemberEvent } from './members.js';
import type { NetworkEvent, TableEvent } from './tables.js';
import type { Msg, NetworkRecordWire, PushPullState, TableEntryWire } from './wire.js';

export type GossipEvent = MemberEvent | TableEvent | NetworkEvent | { type: 'join-ok' | 'join-failed'; addr: string };

/** Table state the engine carries in push-pull and routes broadcasts to. */
export interface SwimDelegate {
  snapshot(): { networks: NetworkRecordWire[]; entries: TableEntryWire[] };
  merge(s: PushPullState, now: number): void;
  applyBroadcast(m: Extract<Msg, { type: 'table' | 'network' }>, now: number): void;
  memberDown(name: string, now: number): void;
  inNetwork(node: string, network: string): boolean;
  reap(now: number): void;
  /** A random other node sharing one of our networks, if any. */
  networkPeer(rng: Rng): string | undefined;
}

export interface GossipMetrics {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  streamsIn: number;
  streamsOut: number;
  streamFailures: number;
  probes: number;
  probeFailures: number;
  staleAcks: number;
  /** Probes that got no direct ack in time and were escalated (indirect pings + TCP fallback). */
  indirectProbes: number;
  /** Escalated probes answered over UDP: an ack relayed by a helper (or a late direct one). */
  indirectAcks: number;
  /** Escalated probes answered by the TCP fallback ping (the target is reachable over TCP only). */
  tcpFallbackAcks: number;
  broadcastsEvicted: number;
  drops: Record<string, number>;
}
