/**
 * The waiting half of confirmed drains (design: src/core/drain/acks.ts), used by the worker
 * after it republished a task's records as `draining`: resolves once every live member of each
 * of the task's networks acked in table `drain-acks` — the networks are the task's attachments
 * plus `ingress` while the LB publishes a mirror record of the task there — or after
 * `timeoutMs` (default 10 s; then the outcome is `timeout`, logged at warn and counted).
 *
 * Re-evaluated on every ack-table change, membership change (a node declared dead stops being
 * waited for at once) and network join/leave; no polling. Results are kept (last 100) for
 * `GET /v1/drain/waits`, which tests and operators read to see confirmation latencies.
 */
import type { Router } from '../../adapters/api/server.js';
import type { Logger } from '../../adapters/logger.js';
import type { Timer, TimerClock } from '../../core/clock.js';
import { DEFAULT_DRAIN_ACK_TIMEOUT_MS, DRAIN_ACK_TABLE, decodeAck, drainOutcome, parseAckKey, pendingAcks, type NetworkAcks } from '../../core/drain/index.js';
import { ENDPOINT_TABLE, INGRESS_NETWORK } from '../../core/endpoints.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import type { Subsystem } from '../agent.js';
import { registerDrainWaitRoutes, type DrainResult, type DrainWaitView } from './routes.js';

export type { DrainResult } from './routes.js';
import type { GossipPort } from '../overlay/overlay.js';



/** What the worker needs (a fake in unit tests). */
export interface DrainWait {
  wait(taskId: string, networks: readonly string[]): Promise<DrainResult>;
}

export interface DrainWaiterOptions {
  nodeName: string;
  gossip: GossipPort;
  clock: TimerClock;
  log: Logger;
  /** Give up waiting for acks after this long (ms), default DEFAULT_DRAIN_ACK_TIMEOUT_MS (10 s). */
  timeoutMs?: number;
}

interface Waiting {
  taskId: string;
  networks: readonly string[];
  startedAt: number;
  timer: Timer;
  resolve: (r: DrainResult) => void;
}

export class DrainWaiter implements Subsystem, DrainWait {
  readonly name = 'drain-wait';
  private readonly waits = new Map<string, Waiting>();
  private readonly results: DrainResult[] = [];
  readonly counters = { started: 0, acked: 0, timedOut: 0, aborted: 0 };

  constructor(private readonly o: DrainWaiterOptions) {
    o.gossip.onEvent((ev) => this.onGossip(ev));
  }

  get timeoutMs(): number {
    return this.o.timeoutMs ?? DEFAULT_DRAIN_ACK_TIMEOUT_MS;
  }

  async start(): Promise<void> {}

  /** Ends every pending wait as `aborted` (the agent is stopping). */
  async stop(): Promise<void> {
    for (const w of [...this.waits.values()]) this.finish(w, 'aborted');
  }

  wait(taskId: string, networks: readonly string[]): Promise<DrainResult> {
    const prev = this.waits.get(taskId);
    if (prev) this.finish(prev, 'aborted');
    this.counters.started++;
    return new Promise((resolve) => {
      const w: Waiting = {
        taskId, networks: [...new Set(networks)].sort(), startedAt: this.o.clock.now(), resolve,
        timer: this.o.clock.setTimer(this.timeoutMs, () => this.check(w, true)),
      };
      this.waits.set(taskId, w);
      // Not checked at once: our own ack comes from the local acker on a later turn anyway.
    });
  }

  private onGossip(ev: GossipEvent): void {
    if (this.waits.size === 0) return;
    const relevant = ((ev.type === 'create' || ev.type === 'update' || ev.type === 'delete') && (ev.table === DRAIN_ACK_TABLE || ev.table === ENDPOINT_TABLE))
      || ev.type.startsWith('member-') || ev.type === 'network-join' || ev.type === 'network-leave';
    if (!relevant) return;
    for (const w of [...this.waits.values()]) this.check(w, false);
  }

  /** The task's networks now: its attachments, plus `ingress` while a record of it is there. */
  private networksOf(w: Waiting): string[] {
    const core = this.o.gossip.core;
    const nets = new Set(w.networks);
    if (!nets.has(INGRESS_NETWORK) && core.networks().includes(INGRESS_NETWORK)
      && core.tableEntries(INGRESS_NETWORK, ENDPOINT_TABLE).some((e) => e.key === w.taskId && e.owner === this.o.nodeName)) nets.add(INGRESS_NETWORK);
    return [...nets].sort();
  }

  private viewOf(w: Waiting): { nets: string[]; pending: Array<{ network: string; node: string }>; acks: DrainResult['acks'] } {
    const core = this.o.gossip.core;
    const nets = this.networksOf(w);
    const acks: DrainResult['acks'] = [];
    const views: NetworkAcks[] = nets.map((network) => {
      const entries = core.tableEntries(network, DRAIN_ACK_TABLE);
      const ackKeys: string[] = [];
      for (const e of entries) {
        const p = parseAckKey(e.key);
        // Only the node named in the key may speak for itself.
        if (!p || p.taskId !== w.taskId || p.node !== e.owner) continue;
        ackKeys.push(e.key);
        acks.push({ network, node: p.node, ms: decodeAck(e.value)?.ms ?? null });
      }
      return { network, nodes: core.networkNodes(network), ackKeys };
    });
    const pending = pendingAcks(w.taskId, views, (n) => (n === this.o.nodeName ? 'alive' : core.member(n)?.state));
    return { nets, pending, acks };
  }

  private check(w: Waiting, timerFired: boolean): void {
    if (this.waits.get(w.taskId) !== w) return;
    const { pending } = this.viewOf(w);
    const now = this.o.clock.now();
    const out = drainOutcome(w.startedAt, now, timerFired ? 0 : this.timeoutMs, pending.length);
    if (out === 'acked') this.finish(w, 'acked');
    else if (out === 'timeout' && timerFired) this.finish(w, 'timeout');
  }

  private finish(w: Waiting, outcome: DrainResult['outcome']): void {
    w.timer.cancel();
    this.waits.delete(w.taskId);
    const { nets, pending, acks } = this.viewOf(w);
    const r: DrainResult = { taskId: w.taskId, outcome, ms: Math.round(this.o.clock.now() - w.startedAt), endedAt: Date.now(), networks: nets, acks, pending: outcome === 'acked' ? [] : pending };
    if (outcome === 'acked') {
      this.counters.acked++;
      this.o.log.info({ task: w.taskId, ms: r.ms, acks: acks.length, networks: nets }, 'drain confirmed by every member');
    } else if (outcome === 'timeout') {
      this.counters.timedOut++;
      this.o.log.warn({ task: w.taskId, ms: r.ms, pending, networks: nets }, 'drain not confirmed in time: stopping the task anyway');
    } else {
      this.counters.aborted++;
    }
    this.results.push(r);
    if (this.results.length > 100) this.results.shift();
    w.resolve(r);
  }

  /** What `GET /v1/drain/waits` shows: waits in progress with who is pending, and the last results. */
  view(): DrainWaitView {
    return {
      node: this.o.nodeName, timeoutMs: this.timeoutMs, ...this.counters,
      waiting: [...this.waits.values()].map((w) => ({ task: w.taskId, forMs: Math.round(this.o.clock.now() - w.startedAt), pending: this.viewOf(w).pending })),
      recent: [...this.results],
    };
  }

  routes(router: Router): void {
    registerDrainWaitRoutes(router, this);
  }
}
