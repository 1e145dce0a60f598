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
  /** UDP payload bytes (what memberlist's transport counts for packets; streams are counted apart). */
  bytesIn: number;
  bytesOut: number;
  streamsIn: number;
  streamsOut: number;
  /** Stream (TCP) payload bytes: push-pull and TCP fallback pings, requests and replies. */
  streamBytesIn: number;
  streamBytesOut: number;
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
  /** Push-pulls started because a member we suspect answered a TCP ping (swim.ts tcpAck): its way to refute. */
  tcpRefuteSyncs: number;
  broadcastsEvicted: number;
  /**
   * Members this node declared dead because their suspicion timed out (not deaths it heard of). Under CPU starvation
   * most are false: the convergence bench reports them per round (a false death drops and re-adds the node's entries).
   */
  suspicionsExpired: number;
  drops: Record<string, number>;
  /**
   * Payload bytes sent, by kind (the sum is bytesOut + streamBytesOut; encryption and IP/UDP/TCP headers are the adapter's and
   * the kernel's): `udp:<type>` for a packet's own messages (ping, ack, nack, indirect-ping, and the buddy
   * system's suspect/alive), `piggyback:<type>` for broadcasts riding on them, `gossip:<type>` for broadcasts
   * in gossip-round packets, `udp:compound` for compound headers, `stream:push-pull`, `stream:ping` (TCP
   * fallback) and `stream:reply` (what we answer). Lets a bench say where the bytes go (issue 18 §3).
   */
  bytesOutByKind: Record<string, number>;
}
