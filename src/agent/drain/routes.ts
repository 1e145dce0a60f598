/**
 * The confirmed-drain control API: what this node acked (`/v1/drain/acks`, DrainAcker) and the
 * waits of its stopping tasks (`/v1/drain/waits`, DrainWaiter) — tests and operators read them to
 * see confirmation latencies and who a drain still waits for.
 */
import type { Router } from '../../adapters/api/server.js';
export interface DrainResult {
  taskId: string;
  outcome: 'acked' | 'timeout' | 'aborted';
  /** Wait duration (ms): publish of `draining` → last ack (or timeout). */
  ms: number;
  /** Wall-clock time the wait ended (epoch ms), to correlate with logs and request traces. */
  endedAt: number;
  networks: string[];
  /** Who had acked, with each node's own latency from seeing the drain to acking (ms). */
  acks: Array<{ network: string; node: string; ms: number | null }>;
  /** Who had not acked when the wait ended (empty when acked). */
  pending: Array<{ network: string; node: string }>;
}

export interface DrainAckView {
  node: string;
  acks: number;
  retracts: number;
  errors: number;
  /** Drains seen here and not acked yet. */
  outstanding: Array<{ network: string; task: string; forMs: number }>;
  /** Last acks: latency from seeing the draining record to the ack (ms). */
  recent: Array<{ network: string; task: string; ms: number }>;
}

export interface DrainWaitView {
  node: string;
  timeoutMs: number;
  started: number;
  acked: number;
  timedOut: number;
  aborted: number;
  waiting: Array<{ task: string; forMs: number; pending: Array<{ network: string; node: string }> }>;
  recent: DrainResult[];
}

export function registerDrainAckRoutes(router: Router, acker: { view(): DrainAckView }): void {
  router.add('GET', '/v1/drain/acks', () => ({ json: acker.view() }));
}

export function registerDrainWaitRoutes(router: Router, waiter: { view(): DrainWaitView }): void {
  router.add('GET', '/v1/drain/waits', () => ({ json: waiter.view() }));
}
