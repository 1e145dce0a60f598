/**
 * Types of the agent's load balancer (lb.ts): its options, what it keeps per namespace, its
 * persisted ingress configuration and its counters.
 */
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import type { ConntrackFlusher } from '../../adapters/dataplane/conntrack.js';
import type { ApplyResult, Dataplane } from '../../adapters/dataplane/types.js';
import type { TimerClock } from '../../core/clock.js';
import { EMPTY_DESIRED, type LbDesired } from '../../core/lb/model.js';
import { newGateMemo, type GateMemo, type HeldBackend } from '../../core/lb/overlay-gate.js';
import type { IngressAddr } from './ingress.js';
import type { GossipPort, OverlaySubsystem } from '../overlay/overlay.js';

export interface LbSubsystemOptions {
  nodeName: string;
  underlayIp: string;
  prefix: string;
  dataDir: string;
  gossip: GossipPort;
  overlay: OverlaySubsystem;
  /** Time, and the timers of the LB's schedule and reconcile loop (ManualClock in tests). */
  clock: TimerClock;
  log: Logger;
  exec: Exec;
  dataplane?: Dataplane;
  /** Deletes conntrack entries of removed backends (agent/lb/ct-flush.ts); default by dataplane kind. */
  conntrack?: ConntrackFlusher;
  /** Namespace of a local task (the worker knows); default `<prefix>t-<id[0:12]>`. */
  taskNetns?: (taskId: string) => string | null | undefined;
  /** Burst coalescing (ms), default 30. */
  debounceMs?: number;
  /** Share of wall time apply runs may take under sustained churn (core/lb/schedule.ts LB_MAX_DUTY); 1 = no pacing. */
  maxApplyDuty?: number;
  /** Kernel drift check and plumbing repair period (ms), default 10000. */
  checkMs?: number;
  /** Bounds of the PROXY protocol listeners (config `lb.proxyProtocol`; defaults there). */
  proxyProtocol?: { maxConnections: number; idleTimeoutMs: number };
  /**
   * Drain-ack hook (src/agent/drain/ack.ts): called after each successful namespace apply.
   * Pair with `drained()`.
   */
  onSettled?: () => void;
}

/** What the loop last applied to one namespace. */
export interface NsEntry {
  netns: string;
  /** `host`: the node's own namespace (netns ''), host publish mode. */
  kind: 'task' | 'ingress' | 'host';
  taskId: string | null;
  desired: LbDesired;
  conflicts: string[];
  /** Remote backends left out of `desired` until this node's overlay holds them (core/lb/overlay-gate.ts). */
  held: HeldBackend[];
  /** Gated copies of service objects, reused while unchanged (the dataplane memoizes by identity). */
  gate: GateMemo;
  /** When the namespace started holding backends back (clock ms); null when it holds none. */
  heldSince: number | null;
  last: ApplyResult | null;
  lastAt: number | null;
  error: string | null;
}

/** A namespace entry before its first plan. */
export function newNsEntry(netns: string, kind: NsEntry['kind'], taskId: string | null): NsEntry {
  return { netns, kind, taskId, desired: EMPTY_DESIRED, conflicts: [], held: [], gate: newGateMemo(), heldSince: null, last: null, lastAt: null, error: null };
}

export interface Persisted {
  node: IngressAddr | null;
  tasks: Record<string, IngressAddr & { seen?: boolean }>;
}

/** `LbSubsystem.stats()`. */
export interface LbStats {
  /** Transactions applied (incremental + full; noops not counted). */
  syncs: number;
  /** Of which full resyncs (first apply, after a failure, drift repair). */
  fullResyncs: number;
  /** Failed applies (each makes the next apply of its namespace a full resync). */
  failures: number;
  /** Full resyncs started by the periodic drift check (the kernel differed from what was applied). */
  driftResyncs: number;
  /** The namespace and differences of the last counted drift resync (empty when none). */
  lastDrift: string[];
  /** Wall time of the last transaction and of all of them, milliseconds. */
  lastSyncMs: number;
  totalSyncMs: number;
  /** Namespaces programmed (task sandboxes, ingress sandbox, the node's own for host mode). */
  namespaces: number;
  /** Frontends (VIP:port, published ports) in force, summed over namespaces. */
  services: number;
  /** Active backends behind them, summed over frontends and namespaces. */
  backends: number;
  /** Remote backends held back (summed over namespaces) until this node's overlay programs them. */
  heldBackends: number;
  backend: 'nftables' | 'ipvs' | 'memory';
}
