/**
 * Extra processes serving the node's DNS UDP sockets (issue 6: scale across cores while keeping one DNS
 * server per node).
 *
 * Layout: the agent's DnsServer is process #0 and keeps serving everything itself; `count` more processes
 * (worker-main.ts) receive a duplicate of every UDP socket the server serves — node listeners and every
 * sandbox's 127.0.0.11 socket — over IPC. All readers of a socket share one kernel queue and each
 * datagram goes to exactly one of them, so nothing changes for clients (same address, same port, replies
 * from the socket they asked) and the 127.0.0.11 redirect in every sandbox keeps working. This works on
 * any Node version (no SO_REUSEPORT needed: `reusePort` only arrived in dgram with Node 22.12/23.1) and
 * for sockets bound inside other namespaces by a helper, which a reuseport group could not cover.
 *
 * - Registry: each worker keeps a replica, refreshed by full snapshots (core/dns/snapshot.ts). The pool
 *   polls the registry's generation every `syncMs` (default 20 ms; a number compare, no work when idle)
 *   and sends one snapshot per change burst, so a worker lags the agent by ≤ syncMs + IPC time — small
 *   next to the gossip propagation bound. Each worker has its own answer cache, dropped by its own
 *   generation moving.
 * - TCP stays in the agent process (rare: truncation retries, zone-sized answers).
 * - Forwards: each process gets ⌈maxPending / processes⌉ of the node-wide bound (perWorkerPendingBound).
 * - Counters: workers report every `statsMs` (default 1 s) and on request (`collect()`); a worker that
 *   exits leaves its last report in a retired total, so node-wide counters never go backwards (the
 *   queries it answered after its last report are lost from the figures, at most statsMs worth).
 * - Cost: readers of one socket all wake for each datagram and all but one find it gone (no
 *   SO_REUSEPORT in Node 20's dgram, so no per-process queues). At low rates that is pure overhead —
 *   bench at 5000 qps: ~43–57 µs CPU per query with 2 processes vs ~27–45 µs with 1 — and it only pays
 *   at saturation when a core is free (bench/results/dns.json keeps both figures; on the loaded 2-CPU
 *   bench host 2 processes beat 1 in 3 of 4 set×run pairs). Set config dns.workers = 1 to opt out.
 * - Failure: a worker that exits is respawned with exponential backoff (0.5 s → 30 s); meanwhile the
 *   agent and the other workers serve the sockets, so a crash costs no availability. Workers exit by
 *   themselves when the agent goes (IPC disconnect).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Socket as UdpSocket } from 'node:dgram';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DnsRegistry } from '../../core/dns/registry.js';
import { MeshError } from '../../core/errors.js';
import { snapshotRegistry, type RegistrySnapshot } from '../../core/dns/snapshot.js';
import { emptyStats, sumStats, type DnsServerStats, type ProcessSockets, type UdpSocketCounters } from './stats.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';

const WORKER_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'worker-main.js');
const RESPAWN_MIN_MS = 500;
const RESPAWN_MAX_MS = 30_000;
const READY_TIMEOUT_MS = 15_000;

export interface WorkerPoolOptions {
  /** Extra processes (the agent's own is not counted). */
  readonly count: number;
  readonly registry: DnsRegistry;
  readonly init: WorkerInit;
  /** Registry generation poll interval, ms (default 20). */
  readonly syncMs?: number;
  /** Where worker trouble is reported (start failures, exits, rejected snapshots). */
  readonly onEvent?: (event: string, detail: Record<string, unknown>) => void;
}

interface Shared {
  readonly sock: UdpSocket;
  networks: readonly string[] | null;
}

interface Slot {
  readonly index: number;
  child: ChildProcess | undefined;
  ready: boolean;
  last: DnsServerStats | undefined;
  /** The sockets this worker served at its last report (what it read and answered on each). */
  lastSockets: readonly UdpSocketCounters[];
  failures: number;
  timer: NodeJS.Timeout | undefined;
  /** Resolvers waiting for the next stats report. */
  waiters: Array<() => void>;
  /** close-udp acks awaited, by socket id. */
  closeAcks: Map<number, Array<() => void>>;
}

/** Respawn delay after the n-th consecutive failure (n ≥ 1), ms. */
export function respawnDelayMs(n: number): number {
  return Math.min(RESPAWN_MAX_MS, RESPAWN_MIN_MS * 2 ** Math.max(0, Math.min(n - 1, 16)));
}

export class DnsWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly shared = new Map<number, Shared>();
  private retired: DnsServerStats = emptyStats();
  private snap: RegistrySnapshot | undefined;
  private sentGen = -1;
  private poll: NodeJS.Timeout | undefined;
  private stopping = false;
  private nextId = 1;
  /** Workers started (first starts and respawns). */
  spawns = 0;

  constructor(private readonly o: WorkerPoolOptions) {}

  /** Forks every worker and resolves once each is ready (or failed: it is then respawned in the background). */
  async start(): Promise<void> {
    this.stopping = false;
    this.syncRegistry();
    await Promise.all(Array.from({ length: this.o.count }, (_, index) => {
      const slot: Slot = { index, child: undefined, ready: false, last: undefined, lastSockets: [], failures: 0, timer: undefined, waiters: [], closeAcks: new Map() };
      this.slots.push(slot);
      return this.spawn(slot);
    }));
    this.poll = setInterval(() => this.syncRegistry(), this.o.syncMs ?? 20);
    this.poll.unref();
  }

  /** Workers currently up and initialised. */
  get readyCount(): number {
    return this.slots.filter((s) => s.ready).length;
  }

  /** Process ids of the running workers (tests, diagnostics). */
  pids(): number[] {
    return this.slots.flatMap((s) => (s.child?.pid !== undefined && s.ready ? [s.child.pid] : []));
  }

  /**
   * Serves `sock` from every worker too; returns its id for retag/unshare (`id`: the caller's, unique
   * among the shared sockets, so that every process reports the socket under one number).
   */
  share(sock: UdpSocket, networks: readonly string[] | undefined, id: number = this.nextId++): number {
    if (this.shared.has(id)) throw new MeshError('MESHD_INTERNAL', `dns worker pool: socket id ${id} is already shared`);
    const sh: Shared = { sock, networks: networks ? [...networks] : null };
    this.shared.set(id, sh);
    for (const s of this.slots) if (s.ready) this.sendSocket(s, id, sh);
    return id;
  }

  /** The networks of a shared socket changed (a sandbox joined/left a network). */
  retag(id: number, networks: readonly string[] | undefined): void {
    const sh = this.shared.get(id);
    if (!sh) return;
    sh.networks = networks ? [...networks] : null;
    this.broadcast({ t: 'retag', id, networks: sh.networks });
  }

  /**
   * Stops serving a shared socket in every worker and resolves when each closed its copy (or is gone, or
   * after 5 s) — a copy left open would keep a deleted sandbox namespace alive.
   */
  async unshare(id: number): Promise<void> {
    if (!this.shared.delete(id)) return;
    await Promise.all(this.slots.filter((s) => s.ready && s.child?.connected).map((s) => new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 5000);
      const done = (): void => {
        clearTimeout(t);
        resolve();
      };
      const l = s.closeAcks.get(id) ?? [];
      l.push(done);
      s.closeAcks.set(id, l);
      this.sendTo(s, { t: 'close-udp', id });
    })));
  }

  /** Node-wide counters from the workers' last reports (plus retired workers'). */
  stats(): DnsServerStats {
    return sumStats([this.retired, ...this.slots.flatMap((s) => (s.last ? [s.last] : []))]);
  }

  /** Each worker's view of the sockets it serves, as of its last report (collect() refreshes). */
  socketReport(): ProcessSockets[] {
    return this.slots.map((s) => ({ role: 'worker', worker: s.index, pid: s.ready ? s.child?.pid : undefined, sockets: s.lastSockets }));
  }

  /** Asks every worker for fresh counters (waits ≤ timeoutMs), then returns stats(). */
  async collect(timeoutMs = 500): Promise<DnsServerStats> {
    await Promise.all(this.slots.filter((s) => s.ready).map((s) => new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      s.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
      this.sendTo(s, { t: 'stats?' });
    })));
    return this.stats();
  }

  /** Sends a snapshot now if the registry moved since the last one. */
  syncRegistry(): void {
    const gen = this.o.registry.generation;
    if (gen === this.sentGen) return;
    this.sentGen = gen;
    this.snap = snapshotRegistry(this.o.registry);
    this.broadcast({ t: 'snapshot', snap: this.snap });
  }

  /** Stops every worker (waits ≤ 5 s each, then SIGKILL). Idempotent. */
  async close(): Promise<void> {
    this.stopping = true;
    if (this.poll) clearInterval(this.poll);
    await Promise.all(this.slots.map(async (s) => {
      if (s.timer) clearTimeout(s.timer);
      const c = s.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        c.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        if (c.connected) this.sendTo(s, { t: 'stop' });
        else c.kill('SIGTERM');
      });
    }));
    this.shared.clear();
  }

  private spawn(slot: Slot): Promise<void> {
    this.spawns++;
    const child = fork(WORKER_MAIN, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
    slot.child = child;
    slot.ready = false;
    return new Promise<void>((resolve) => {
      const readyTimer = setTimeout(() => {
        this.o.onEvent?.('dns worker did not start in time', { worker: slot.index });
        child.kill('SIGKILL');
      }, READY_TIMEOUT_MS);
      child.on('message', (m: FromWorker) => {
        switch (m.t) {
          case 'ready':
            clearTimeout(readyTimer);
            slot.ready = true;
            slot.failures = 0;
            if (this.snap) this.sendTo(slot, { t: 'snapshot', snap: this.snap });
            for (const [id, sh] of this.shared) this.sendSocket(slot, id, sh);
            resolve();
            return;
          case 'stats':
            slot.last = m.stats;
            slot.lastSockets = m.sockets ?? [];
            for (const w of slot.waiters.splice(0)) w();
            return;
          case 'closed-udp':
            for (const f of slot.closeAcks.get(m.id) ?? []) f();
            slot.closeAcks.delete(m.id);
            return;
          case 'error':
            this.o.onEvent?.('dns worker error', { worker: slot.index, message: m.message });
            return;
        }
      });
      child.on('error', (e) => this.o.onEvent?.('dns worker error', { worker: slot.index, message: e.message }));
      child.once('exit', (code, signal) => {
        clearTimeout(readyTimer);
        slot.ready = false;
        if (slot.last) this.retired = sumStats([this.retired, { ...slot.last, pending: 0, cache: { ...slot.last.cache, size: 0 } }]);
        slot.last = undefined;
        slot.lastSockets = [];
        for (const w of slot.waiters.splice(0)) w();
        for (const l of slot.closeAcks.values()) for (const f of l) f();
        slot.closeAcks.clear();
        resolve();
        if (this.stopping) return;
        slot.failures++;
        const delay = respawnDelayMs(slot.failures);
        this.o.onEvent?.('dns worker exited; respawning', { worker: slot.index, code, signal, delayMs: delay });
        slot.timer = setTimeout(() => void this.spawn(slot), delay);
        slot.timer.unref();
      });
      this.sendTo(slot, { t: 'init', init: this.o.init });
    });
  }

  private sendSocket(slot: Slot, id: number, sh: Shared): void {
    const c = slot.child;
    if (!c?.connected) return;
    try {
      c.send({ t: 'udp', id, networks: sh.networks } satisfies ToWorker, sh.sock as never, (err: Error | null) => {
        if (err) this.o.onEvent?.('dns worker: socket not passed', { worker: slot.index, message: err.message });
      });
    } catch (e) {
      this.o.onEvent?.('dns worker: socket not passed', { worker: slot.index, message: (e as Error).message });
    }
  }

  private broadcast(m: ToWorker): void {
    for (const s of this.slots) if (s.ready) this.sendTo(s, m);
  }

  private sendTo(slot: Slot, m: ToWorker): void {
    const c = slot.child;
    if (!c?.connected) return;
    try {
      c.send(m, (err: Error | null) => {
        if (err) this.o.onEvent?.('dns worker: message not delivered', { worker: slot.index, kind: m.t, message: err.message });
      });
    } catch (e) {
      this.o.onEvent?.('dns worker: message not delivered', { worker: slot.index, kind: m.t, message: (e as Error).message });
    }
  }
}
