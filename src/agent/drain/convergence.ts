/**
 * Convergence receipts on one node (design: src/core/convergence/*): the shell of the pure acker
 * and collector. Runs on every node, beside the drain acks (ack.ts) which confirm removals.
 *
 * Acking: for every `running` endpoint record of the networks this node is on, it notes when
 * the LB APPLIED a transaction holding the record (LbSubsystem.programs) and the DNS registry
 * answers from this version of it (DnsSubsystem.heldRecord), and keeps ONE entry per service
 * (`svc:${serviceId}:${bucket}/${node}` in table `conv-acks`, core/convergence/snapshot.ts) listing
 * what it programmed; each rewrite replaces the older entry and its queued broadcast. Evaluations
 * run on the shared reconcile loop: marked with no delay after table events and after every LB
 * apply (the `onSettled` hook), `recheckMs` later while a version is outstanding (safety net: a
 * failed apply retried by the LB), and when a write held back by `minWriteMs` is due.
 *
 * Collecting: every node indexes the acks it receives (ConvergenceBook, v2 snapshots and v1 acks of
 * older nodes) and expires them locally; when a change is acked by every live member of its network
 * it is observed once into `meshd_convergence_seconds` and kept in the history that
 * `GET /v1/convergence` (netctl's "programmed on 3/3 nodes" line and `netctl debug convergence`) reads.
 */
import type { Router } from '../../adapters/api/server.js';
import type { Logger } from '../../adapters/logger.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { TimerClock } from '../../core/clock.js';
import {
  CONVERGENCE_ACK_TABLE, ConvergenceAcks, ConvergenceBook, ConvergenceHistogram, DEFAULT_CONVERGENCE_ACK_TTL_MS, encodeSnapshot, recordRev, taskHash, type ChangeView,
} from '../../core/convergence/index.js';
import { awaitsAck } from '../../core/drain/index.js';
import { ENDPOINT_TABLE, decodeEndpoint, type EndpointRecord } from '../../core/endpoints.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { GossipEvent } from '../../core/gossip/index.js';
import type { Subsystem } from '../agent.js';
import type { GossipPort } from '../overlay/overlay.js';

export interface ConvergenceOptions {
  nodeName: string;
  gossip: GossipPort;
  clock: TimerClock;
  log: Logger;
  /** LB applied a state holding the record (LbSubsystem.programs). Default: true (no LB). */
  lbPrograms?: (rec: EndpointRecord) => boolean;
  /** The record DNS answers from (DnsSubsystem.heldRecord). Default: the record itself (no DNS). */
  dnsRecord?: (network: string, taskId: string) => EndpointRecord | undefined;
  /** Wall clock (epoch ms) for the acks' `seenAt`; default Date.now. */
  wall?: () => number;
  /**
   * How long a collected ack is kept after its last mention (ms), and the least time between two writes of one entry
   * (ms; given, it is used as is; absent, core's default scaled with the network's size: ackWriteIntervalMs).
   */
  ttlMs?: number;
  minWriteMs?: number;
  /** Re-check period while a version is outstanding (ms), default 250. */
  recheckMs?: number;
}

/** `GET /v1/convergence` */
export interface ConvergenceView {
  node: string;
  acker: { programmed: number; writes: number; deletes: number; held: number; errors: number; live: number; outstanding: Array<{ network: string; task: string; forMs: number }> };
  indexed: number;
  badAcks: number;
  /** Acks of nodes still writing the v1 format (one entry per change), indexed too. */
  legacyAcks: number;
  /** Collected acks dropped `ttlMs` after their last mention. */
  expired: number;
  /** Collected acks dropped because the index reached its bound (oldest-indexed tasks first). */
  capped: number;
  changes: ChangeView[];
}

export class ConvergenceReceipts implements Subsystem {
  readonly name = 'convergence';
  private readonly acks: ConvergenceAcks;
  private readonly book: ConvergenceBook;
  readonly histogram = new ConvergenceHistogram();
  /** The records acked about, `${network}\0${task}` → record (one per endpoint record held). */
  private readonly recs = new Map<string, EndpointRecord>();
  /** `${network}\0${taskHash}` → task id of the records held: names the tasks of snapshots. */
  private readonly names = new Map<string, string>();
  private loop: ReconcileLoop<'evaluate'> | null = null;
  private errors = 0;

  constructor(private readonly o: ConvergenceOptions) {
    this.acks = new ConvergenceAcks(o.nodeName, o.minWriteMs !== undefined ? { minWriteMs: o.minWriteMs } : {});
    this.book = new ConvergenceBook(200, o.ttlMs ?? DEFAULT_CONVERGENCE_ACK_TTL_MS);
    o.gossip.onEvent((ev) => this.onGossip(ev));
  }

  private wall(): number {
    return this.o.wall?.() ?? Date.now();
  }

  async start(): Promise<void> {
    this.loop ??= new ReconcileLoop<'evaluate'>({
      clock: this.o.clock,
      run: async () => this.evaluate(),
      onError: (err) => this.o.log.error({ err: toMeshError(err).message }, 'convergence ack evaluation failed (retrying)'),
    });
    const core = this.o.gossip.core;
    for (const net of core.networks()) {
      for (const e of core.tableEntries(net, ENDPOINT_TABLE)) this.onRecord(net, e.key, e.value);
      for (const e of core.tableEntries(net, CONVERGENCE_ACK_TABLE)) this.onAck(net, e.key, e.owner, e.value);
    }
    this.kick();
  }

  async stop(): Promise<void> {
    const loop = this.loop;
    this.loop = null;
    await loop?.stop();
  }

  /** Evaluates on the next turn; also the LB's settle hook. */
  kick(): void {
    this.loop?.mark('evaluate', 0);
  }

  private onGossip(ev: GossipEvent): void {
    if (ev.type === 'create' || ev.type === 'update') {
      if (ev.table === ENDPOINT_TABLE) (this.onRecord(ev.network, ev.key, ev.value), this.kick());
      else if (ev.table === CONVERGENCE_ACK_TABLE) this.onAck(ev.network, ev.key, ev.owner, ev.value);
    } else if (ev.type === 'delete') {
      if (ev.table === ENDPOINT_TABLE) {
        this.recs.delete(`${ev.network}\0${ev.key}`);
        this.names.delete(`${ev.network}\0${taskHash(ev.key)}`);
        this.book.close(ev.network, taskHash(ev.key));
        this.acks.gone(ev.network, ev.key);
        this.kick();
      } else if (ev.table === CONVERGENCE_ACK_TABLE) {
        this.book.delete(ev.network, ev.key);
      }
    } else if (ev.type === 'network-leave' && ev.node === this.o.nodeName) {
      this.acks.leftNetwork(ev.network);
      this.book.dropNetwork(ev.network);
      for (const k of [...this.recs.keys()]) if (k.startsWith(`${ev.network}\0`)) this.recs.delete(k);
      for (const k of [...this.names.keys()]) if (k.startsWith(`${ev.network}\0`)) this.names.delete(k);
    } else if (ev.type === 'network-leave') {
      // A node that left the network is no longer waited for. A join only adds a node to wait for: it
      // completes nothing (its acks arrive through onAck).
      this.recheck([ev.network]);
    } else if (ev.type === 'member-dead' || ev.type === 'member-left') {
      // A node declared dead is no longer waited for: changes it held back may complete now. Other member
      // events (alive, suspect, update) keep or add nodes to wait for, so they complete nothing.
      this.recheck(this.o.gossip.core.networks());
    }
  }

  private onRecord(network: string, key: string, value: Uint8Array): void {
    const d = decodeEndpoint(value);
    if (!d.ok || d.record.taskId !== key || d.record.network !== network) return; // the LB and DNS count bad records
    const r = d.record;
    this.recs.set(`${network}\0${key}`, r);
    this.names.set(`${network}\0${taskHash(key)}`, key);
    this.acks.record(network, key, r.serviceId, r.serviceName, r.state, recordRev(r), this.o.clock.now(), this.wall());
  }

  private onAck(network: string, key: string, owner: string, value: Uint8Array): void {
    const got = this.book.set(network, key, owner, value, this.o.clock.now());
    if (!got?.tasks.length) return;
    const expected = this.expected(network);
    for (const t of got.tasks) this.observe(network, t, expected);
    this.kick(); // the book's next expiry
  }

  /** Re-checks the changes still open on `networks` (only those can complete now); each network's members once. */
  private recheck(networks: readonly string[]): void {
    for (const n of networks) {
      const open = this.book.openTasksOn(n);
      if (open.length === 0) continue;
      const expected = this.expected(n);
      for (const t of open) this.observe(n, t, expected);
    }
  }

  /** Live members of a network (self included): whom a change waits for. */
  private expected(network: string): string[] {
    const core = this.o.gossip.core;
    return core.networkNodes(network).filter((n) => n === this.o.nodeName || awaitsAck(core.member(n)?.state));
  }

  private readonly nameOf = (network: string, hash: string): string => this.names.get(`${network}\0${hash}`) ?? hash;

  private observe(network: string, hash: string, expected: readonly string[]): void {
    const { view, completed } = this.book.check(network, hash, expected, this.nameOf);
    if (completed && view?.totalMs != null) {
      this.histogram.observe(view.totalMs / 1000);
      this.o.log.debug({ network, task: view.task, service: view.service, ms: view.totalMs, slowest: view.slowest, nodes: view.acks.length }, 'change programmed on every node');
    }
  }

  /** Does this node carry version `rev` of the record: LB applied it and DNS answers from it? */
  private programmed(network: string, taskId: string, rev: string): boolean {
    const rec = this.recs.get(`${network}\0${taskId}`);
    if (!rec || recordRev(rec) !== rev) return false;
    const dns = this.o.dnsRecord ? this.o.dnsRecord(network, taskId) : rec;
    if (!dns || dns.state !== 'running' || recordRev(dns) !== rev) return false;
    return this.o.lbPrograms?.(rec) ?? true;
  }

  private evaluate(): void {
    const now = this.o.clock.now();
    const core = this.o.gossip.core;
    let wrote = false;
    this.book.expire(now);
    const sizes = new Map<string, number>();
    const members = (n: string): number => sizes.get(n) ?? (sizes.set(n, core.networkNodes(n).length), sizes.get(n)!);
    // An explicit minWriteMs is the interval as given (tests); by default it grows with the network (ackWriteIntervalMs).
    for (const a of this.acks.evaluate(now, this.wall(), (n, t, r) => this.programmed(n, t, r), this.o.minWriteMs === undefined ? members : undefined)) {
      try {
        if (a.type === 'write') core.tableSet(a.network, CONVERGENCE_ACK_TABLE, a.key, encodeSnapshot(a.snapshot), now);
        else core.tableDelete(a.network, CONVERGENCE_ACK_TABLE, a.key, now);
        wrote = true;
      } catch (e) {
        this.acks.failed(a.network, a.key);
        // Not on the network any more (the entry left with us) or a table limit: counted, shown in the view.
        this.errors++;
        this.o.log.warn({ err: toMeshError(e).message, network: a.network, key: a.key, action: a.type }, 'convergence ack not written');
      }
    }
    if (wrote) this.o.gossip.pump();
    if (this.acks.outstandingCount()) this.loop?.mark('evaluate', this.o.recheckMs ?? 250);
    for (const next of [this.acks.nextDeadline(), this.book.nextExpiry()]) if (next !== undefined) this.loop?.mark('evaluate', Math.max(0, next - now));
  }

  /** What `GET /v1/convergence` returns; `service` and `since` (epoch ms) filter the changes. */
  view(filter: { service?: string; since?: number; limit?: number } = {}): ConvergenceView {
    const now = this.o.clock.now();
    this.book.expire(now);
    let changes = this.book.list((n) => this.expected(n), 1000, this.nameOf, filter.service);
    if (filter.since !== undefined) changes = changes.filter((c) => c.startedAt >= filter.since!);
    return {
      node: this.o.nodeName,
      acker: { ...this.acks.counters, errors: this.errors, live: this.acks.liveAcks(), outstanding: this.acks.outstanding(now) },
      indexed: this.book.size(), badAcks: this.book.badAcks, legacyAcks: this.book.legacyAcks, expired: this.book.expired, capped: this.book.capped,
      changes: changes.slice(0, filter.limit ?? 50),
    };
  }

  routes(router: Router): void {
    router.add('GET', '/v1/convergence', (r) => {
      const num = (name: string, max: number): number | undefined => {
        const v = r.query.get(name);
        if (v === null) return undefined;
        const n = Number(v);
        if (!/^\d{1,15}$/.test(v) || n > max) throw new MeshError('MESHD_BAD_ARGUMENT', `${name} must be an integer from 0 to ${max}, got ${JSON.stringify(v.slice(0, 40))}`);
        return n;
      };
      const service = r.query.get('service');
      if (service !== null && !/^[a-z0-9][a-z0-9-]{0,62}$/i.test(service)) throw new MeshError('MESHD_BAD_ARGUMENT', `service must be a service name, got ${JSON.stringify(service.slice(0, 70))}`);
      const since = num('since', 8.64e15);
      const limit = num('limit', 1000);
      return { json: this.view({ ...(service !== null ? { service } : {}), ...(since !== undefined ? { since } : {}), ...(limit !== undefined ? { limit } : {}) }) };
    });
  }
}
