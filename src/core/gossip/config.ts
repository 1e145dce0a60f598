/**
 * Gossip tuning. Units are in the names. The `lan` preset carries hashicorp/memberlist's
 * DefaultLANConfig values and is the documented reference; `wan` and `local` derive from it
 * the way memberlist's DefaultWANConfig / DefaultLocalConfig derive from the LAN one.
 */
import { MeshError } from '../errors.js';

export interface GossipConfig {
  /** Time between two probes of the round-robin probe cycle (scaled by local health). */
  readonly probeIntervalMs: number;
  /** Time to wait for a direct ack before indirect probes and the TCP fallback start (scaled by local health). */
  readonly probeTimeoutMs: number;
  /** Number of members asked to probe a silent member on our behalf (SWIM's k). */
  readonly indirectChecks: number;
  /** Broadcast budget multiplier: each message is sent retransmitMult × ⌈log10(N+1)⌉ times. */
  readonly retransmitMult: number;
  /** Suspicion timeout multiplier: min timeout = suspicionMult × max(1, log10 N) × probeInterval. */
  readonly suspicionMult: number;
  /** Max suspicion timeout = suspicionMaxTimeoutMult × min timeout (Lifeguard: shrinks with confirmations). */
  readonly suspicionMaxTimeoutMult: number;
  /** Interval between gossip rounds (only sent when there is something to say). */
  readonly gossipIntervalMs: number;
  /** Members contacted per gossip round. */
  readonly gossipNodes: number;
  /** Dead members still receive gossip this long after their death (memberlist's GossipToTheDeadTime). */
  readonly gossipToTheDeadMs: number;
  /** Full-state TCP anti-entropy interval at ≤ 32 members (scaled up with log2 N above that). */
  readonly pushPullIntervalMs: number;
  /** Local health score ceiling: timeouts are stretched by up to this factor. */
  readonly awarenessMaxMultiplier: number;
  /** Dead/left members are kept (and reconnect attempts made to dead ones) this long, then forgotten. */
  readonly deadNodeReclaimMs: number;
  /** Table and network-leave tombstones are kept this long so late/old writes cannot resurrect them. */
  readonly tombstoneReapMs: number;
  /** Interval between push-pull attempts to one random dead member, so healed partitions merge (memberlist#222). */
  readonly reconnectIntervalMs: number;
  /** Budget of one stream exchange (TCP fallback ping, push-pull); the adapter enforces it, the core forgets after it. */
  readonly tcpTimeoutMs: number;
  /** Largest UDP payload we build (compound packets are filled up to this). */
  readonly maxPacketBytes: number;
  /**
   * Largest push-pull frame accepted or sent, in bytes: a state above it is sent as several frames
   * in one stream (wire.ts `encodePushPull`), so this bounds each frame, not the cluster's state.
   */
  readonly maxPushPullBytes: number;
  /**
   * Most frames one push-pull may carry (frames × maxPushPullBytes bounds what one stream can make a
   * node hold); a longer stream is refused and counted (`too-many-frames`).
   */
  readonly maxPushPullFrames: number;
  /** Broadcast queue cap; beyond it the most-transmitted (oldest) messages are dropped. */
  readonly maxBroadcastQueue: number;
  /** 1 = send a TCP ping alongside indirect probes (memberlist's default), 0 = disable. */
  readonly tcpFallback: number;
}

export type GossipPreset = 'lan' | 'wan' | 'local';

/** memberlist DefaultLANConfig (config.go) — the reference values. */
const LAN: GossipConfig = Object.freeze({
  probeIntervalMs: 1000, // memberlist ProbeInterval 1s: failure detection within seconds on a LAN
  probeTimeoutMs: 500, // memberlist ProbeTimeout 500ms: ~99.9th percentile LAN RTT with margin
  indirectChecks: 3, // memberlist IndirectChecks 3: SWIM's k, survives one or two lossy paths
  retransmitMult: 4, // memberlist RetransmitMult 4: high dissemination probability even with loss
  suspicionMult: 4, // memberlist SuspicionMult 4: time for the suspect to refute
  suspicionMaxTimeoutMult: 6, // memberlist SuspicionMaxTimeoutMult 6: Lifeguard's upper bound
  gossipIntervalMs: 200, // memberlist GossipInterval 200ms
  gossipNodes: 3, // memberlist GossipNodes 3
  gossipToTheDeadMs: 30_000, // memberlist GossipToTheDeadTime 30s: lets a dead member learn it and refute
  pushPullIntervalMs: 30_000, // memberlist PushPullInterval 30s
  awarenessMaxMultiplier: 8, // memberlist AwarenessMaxMultiplier 8
  deadNodeReclaimMs: 24 * 3600_000, // ours: keep dead members a day for reconnect (serf's reconnect timeout idea)
  tombstoneReapMs: 30 * 60_000, // ours: NetworkDB reapEntryInterval is 30 min
  reconnectIntervalMs: 30_000, // ours: serf's ReconnectInterval is 30s
  tcpTimeoutMs: 10_000, // memberlist TCPTimeout 10s
  maxPacketBytes: 1400, // memberlist UDPBufferSize 1400: fits a 1500 MTU with IP/UDP/crypto overhead
  maxPushPullBytes: 8 * 1024 * 1024, // ours: per frame; ~20k endpoint records fit one
  maxPushPullFrames: 16, // ours: 128 MiB of state per stream, ~40k services × 10 endpoints (memberlist: one 20 MB stream)
  maxBroadcastQueue: 4096, // ours: bounded memory when joins flood the queue
  tcpFallback: 1, // memberlist DisableTcpPings=false
});

/** memberlist DefaultWANConfig: slower, more tolerant timings. */
const WAN: GossipConfig = Object.freeze({
  ...LAN,
  probeIntervalMs: 5000, // memberlist WAN ProbeInterval 5s
  probeTimeoutMs: 3000, // memberlist WAN ProbeTimeout 3s: WAN RTTs
  suspicionMult: 6, // memberlist WAN SuspicionMult 6
  gossipIntervalMs: 500, // memberlist WAN GossipInterval 500ms
  gossipNodes: 4, // memberlist WAN GossipNodes 4
  gossipToTheDeadMs: 60_000, // memberlist WAN GossipToTheDeadTime 60s
  pushPullIntervalMs: 60_000, // memberlist WAN PushPullInterval 60s
  tcpTimeoutMs: 30_000, // memberlist WAN TCPTimeout 30s
});

/** Fast timings for labs and tests on one machine (RTT well under 1 ms). */
const LOCAL: GossipConfig = Object.freeze({
  ...LAN,
  probeIntervalMs: 200, // one machine: probing 5×/s is cheap and detects in ~a second
  probeTimeoutMs: 100, // loopback/veth RTT is < 1 ms; 100 ms leaves room for a busy event loop
  indirectChecks: 3, // keep SWIM's k: labs inject loss
  suspicionMult: 4, // same refutation window in probe periods as LAN
  gossipIntervalMs: 100, // memberlist Local GossipInterval 100ms
  gossipToTheDeadMs: 15_000, // memberlist Local GossipToTheDeadTime 15s
  pushPullIntervalMs: 5_000, // labs: anti-entropy visible within seconds
  deadNodeReclaimMs: 10 * 60_000, // labs: forget dead members after 10 min
  tombstoneReapMs: 60_000, // labs: tombstones live a minute
  reconnectIntervalMs: 2_000, // labs: healed partitions merge within seconds
  tcpTimeoutMs: 1_000, // memberlist Local TCPTimeout 1s
});

export const GOSSIP_PRESETS: Readonly<Record<GossipPreset, GossipConfig>> = Object.freeze({ lan: LAN, wan: WAN, local: LOCAL });

/** Inclusive bounds per field; anything outside is a configuration error. */
export const BOUNDS: Readonly<Record<keyof GossipConfig, readonly [number, number]>> = Object.freeze({
  probeIntervalMs: [10, 600_000],
  probeTimeoutMs: [1, 600_000],
  indirectChecks: [0, 16],
  retransmitMult: [1, 64],
  suspicionMult: [1, 64],
  suspicionMaxTimeoutMult: [1, 64],
  gossipIntervalMs: [1, 600_000],
  gossipNodes: [1, 64],
  gossipToTheDeadMs: [0, 7 * 86_400_000],
  pushPullIntervalMs: [100, 86_400_000],
  awarenessMaxMultiplier: [1, 64],
  deadNodeReclaimMs: [0, 30 * 86_400_000],
  tombstoneReapMs: [0, 30 * 86_400_000],
  reconnectIntervalMs: [100, 86_400_000],
  tcpTimeoutMs: [10, 600_000],
  maxPacketBytes: [512, 65_000],
  maxPushPullBytes: [64 * 1024, 256 * 1024 * 1024],
  maxPushPullFrames: [1, 1024],
  maxBroadcastQueue: [16, 1_000_000],
  tcpFallback: [0, 1],
});

/**
 * Preset plus per-field overrides (numbers, as the agent config carries them), validated:
 * unknown keys, non-integers, out-of-range values and probeTimeout ≥ probeInterval throw MESHD_BAD_CONFIG.
 */
export function resolveGossipConfig(preset: GossipPreset = 'lan', overrides: Readonly<Record<string, number>> = {}): GossipConfig {
  const base = GOSSIP_PRESETS[preset];
  if (!base) throw new MeshError('MESHD_BAD_CONFIG', `unknown gossip preset: ${String(preset)}`);
  const out: Record<string, number> = { ...base };
  for (const [k, v] of Object.entries(overrides)) {
    const b = (BOUNDS as Record<string, readonly [number, number] | undefined>)[k];
    if (!b) throw new MeshError('MESHD_BAD_CONFIG', `unknown gossip setting: ${k}`, { key: k });
    if (typeof v !== 'number' || !Number.isInteger(v) || v < b[0] || v > b[1]) {
      throw new MeshError('MESHD_BAD_CONFIG', `gossip.${k} must be an integer in [${b[0]}, ${b[1]}], got ${String(v)}`, { key: k, value: v });
    }
    out[k] = v;
  }
  const cfg = out as unknown as GossipConfig;
  if (cfg.probeTimeoutMs >= cfg.probeIntervalMs) {
    throw new MeshError('MESHD_BAD_CONFIG', `gossip.probeTimeoutMs (${cfg.probeTimeoutMs}) must be below probeIntervalMs (${cfg.probeIntervalMs})`);
  }
  return Object.freeze(cfg);
}
