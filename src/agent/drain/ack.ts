/**
 * The acking half of confirmed drains (design: src/core/drain/acks.ts). Runs on every node.
 *
 * It follows the `endpoints` records of every network this node is on. For each record in
 * state `draining` it writes an ack `${task}/${node}` into table `drain-acks` of that network
 * as soon as this node's LB has APPLIED a state where the task is no longer a running backend
 * there and the DNS registry no longer serves it as healthy. The ack is deleted when the record
 * is deleted (tombstoned and reaped like any entry) or turns `running` again.
 *
 * Evaluation runs on the shared reconcile loop (adapters/reconcile-loop.ts), marked with no delay
 * after table events: the loop's timer fires after every listener saw the current event whatever
 * the subscription order, and a burst of events is one evaluation. It runs again each time the
 * LB's apply loop settles (the `onSettled` hook of lb.ts) and, while an ack is outstanding,
 * `recheckMs` after the last evaluation as a safety net (e.g. a failed apply retried by the LB).
 */
import type { Router } from '../../adapters/api/server.js';
import type { Logger } from '../../adapters/logger.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { TimerClock } from '../../core/clock.js';
import { DRAIN_ACK_TABLE, ackAction, ackKey, encodeAck } from '../../core/drain/index.js';
import { ENDPOINT_TABLE, decodeEndpoint } from '../../core/endpoints.js';
import { toMeshError } from '../../core/errors.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import type { Subsystem } from '../agent.js';
import { registerDrainAckRoutes, type DrainAckView } from './routes.js';
import type { GossipPort } from '../overlay/overlay.js';

export interface DrainAckerOptions {
  nodeName: string;
  gossip: GossipPort;
  clock: TimerClock;
  log: Logger;
  /**
   * True when this node's kernel no longer sends new connections to `taskId` on `network`
   * (LbSubsystem.drained). Default: always true (a node without a load balancer).
   */
  lbApplied?: (network: string, taskId: string) => boolean;
  /** True while this node's DNS still answers with the task as healthy (DnsSubsystem.servesTask). Default false. */
  dnsServes?: (network: string, taskId: string) => boolean;
  /** Re-check period while an ack is outstanding (ms), default 250. */
  recheckMs?: number;
}

interface Candidate {
  network: string;
  taskId: string;
  state: 'running' | 'draining';
  /** When this node first saw the record draining (clock ms). */
  since: number;
  acked: boolean;
}


export class DrainAcker implements Subsystem {
  readonly name = 'drain-ack';
  /** `${network}\0${taskId}` → what we know of its record. */
  private readonly cands = new Map<string, Candidate>();
  private readonly recent: Array<{ network: string; task: string; ms: number }> = [];
  /** Created by start(), gone after stop(): evaluations run only in between. */
  private loop: ReconcileLoop<'evaluate'> | null = null;
  readonly counters = { acks: 0, retracts: 0, errors: 0 };

  constructor(private readonly o: DrainAckerOptions) {
    o.gossip.onEvent((ev) => this.onGossip(ev));
  }

  async start(): Promise<void> {
    this.loop ??= new ReconcileLoop<'evaluate'>({
      clock: this.o.clock,
      run: async () => this.evaluate(),
      onError: (err) => this.o.log.error({ err: toMeshError(err).message }, 'drain ack evaluation failed (retrying)'),
    });
    // Records already held (agent restart): our own acks died with us; they are re-made here.
    for (const net of this.o.gossip.core.networks()) {
      for (const e of this.o.gossip.core.tableEntries(net, ENDPOINT_TABLE)) this.onRecord(net, e.key, e.value);
    }
    this.kick();
  }

  async stop(): Promise<void> {
    const loop = this.loop;
    this.loop = null;
    await loop?.stop();
  }

  private onGossip(ev: GossipEvent): void {
    if (ev.type === 'create' || ev.type === 'update') {
      if (ev.table !== ENDPOINT_TABLE) return;
      this.onRecord(ev.network, ev.key, ev.value);
    } else if (ev.type === 'delete') {
      if (ev.table !== ENDPOINT_TABLE) return;
      const k = `${ev.network}\0${ev.key}`;
      const c = this.cands.get(k);
      if (c) {
        this.cands.delete(k);
        if (c.acked) this.retract(c);
      }
    } else if (ev.type === 'network-leave' && ev.node === this.o.nodeName) {
      // Our entries on that network went with the leave; nothing to retract.
      for (const [k, c] of this.cands) if (c.network === ev.network) this.cands.delete(k);
    } else {
      return;
    }
    this.kick();
  }

  private onRecord(network: string, key: string, value: Uint8Array): void {
    const d = decodeEndpoint(value);
    if (!d.ok || d.record.taskId !== key) return; // the LB and DNS count bad records
    const k = `${network}\0${key}`;
    const c = this.cands.get(k);
    if (d.record.state === 'draining') {
      if (!c) this.cands.set(k, { network, taskId: key, state: 'draining', since: this.o.clock.now(), acked: false });
      else if (c.state !== 'draining') {
        c.state = 'draining';
        c.since = this.o.clock.now();
      }
    } else if (c) {
      c.state = 'running';
    }
  }

  /** Evaluates on the next turn (after every listener saw the current event); also the LB's settle hook. */
  kick(): void {
    this.loop?.mark('evaluate', 0);
  }

  private evaluate(): void {
    let outstanding = false;
    let wrote = false;
    for (const [k, c] of this.cands) {
      const lb = this.o.lbApplied?.(c.network, c.taskId) ?? true;
      const dns = this.o.dnsServes?.(c.network, c.taskId) ?? false;
      const act = ackAction(c.state, lb, dns, c.acked);
      if (act === 'ack') {
        const ms = Math.max(0, Math.round(this.o.clock.now() - c.since));
        try {
          this.o.gossip.core.tableSet(c.network, DRAIN_ACK_TABLE, ackKey(c.taskId, this.o.nodeName), encodeAck({ v: 1, node: this.o.nodeName, ms }), this.o.clock.now());
          c.acked = true;
          wrote = true;
          this.counters.acks++;
          this.recent.push({ network: c.network, task: c.taskId, ms });
          if (this.recent.length > 50) this.recent.shift();
          this.o.log.debug({ task: c.taskId, network: c.network, ms }, 'drain acked');
        } catch (e) {
          this.counters.errors++;
          this.o.log.warn({ err: toMeshError(e).message, task: c.taskId, network: c.network }, 'drain ack not written (retrying)');
          outstanding = true;
        }
      } else if (act === 'retract') {
        this.retract(c);
        wrote = true;
        if (c.state === 'running') c.acked = false;
      } else if (c.state === 'draining' && !c.acked) {
        outstanding = true;
      }
      if (c.state === 'running' && !c.acked) this.cands.delete(k);
    }
    if (wrote) this.o.gossip.pump();
    if (outstanding) this.loop?.mark('evaluate', this.o.recheckMs ?? 250);
  }

  private retract(c: Candidate): void {
    c.acked = false;
    try {
      if (this.o.gossip.core.tableDelete(c.network, DRAIN_ACK_TABLE, ackKey(c.taskId, this.o.nodeName), this.o.clock.now())) this.counters.retracts++;
    } catch (e) {
      // Not on the network any more: the entry left with us.
      this.o.log.debug({ err: toMeshError(e).message, task: c.taskId, network: c.network }, 'drain ack retract skipped');
    }
    this.o.gossip.pump();
  }

  view(): DrainAckView {
    const now = this.o.clock.now();
    return {
      node: this.o.nodeName, ...this.counters,
      outstanding: [...this.cands.values()].filter((c) => c.state === 'draining' && !c.acked).map((c) => ({ network: c.network, task: c.taskId, forMs: Math.round(now - c.since) })),
      recent: [...this.recent],
    };
  }

  routes(router: Router): void {
    registerDrainAckRoutes(router, this);
  }
}
