/**
 * Puts the node's one embedded DNS server at 127.0.0.11:53 inside every local task namespace
 * (Docker's model: one resolver per node, reached from each sandbox at the same address).
 *
 * Node cannot setns() by itself: the DNS server's native addon does it on this thread (setns in,
 * bind a UDP socket and a TCP listener, setns back: native/meshd_netns.c) when it is built; else a
 * short-lived helper process binds them inside the namespace and hands them back (both in
 * adapters/netns-sockets.ts). The server then serves them tagged with the task's networks. Task namespaces are found by watching the runtime's
 * namespace directory (/run/netns, where both runtimes name them `<prefix>t-<task>`): the sockets
 * exist as soon as the namespace does — before the task's process starts in the common case — and
 * are closed when it goes (an open socket would otherwise keep a deleted namespace alive).
 *
 * The watch (inotify) is backed by a periodic rescan (default 2 s) and a retry with exponential
 * backoff (0.25 s → 30 s) for binds that failed (e.g. the namespace was still being plumbed); that
 * policy is src/core/dns/sandbox-retry.ts. Scans run through the shared ReconcileLoop (coalesced,
 * one at a time) on the injected clock.
 */
import { readdirSync, watch, type FSWatcher } from 'node:fs';
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import type { DnsServer, SandboxTag } from '../../adapters/dns-server/server.js';
import { bindInNetns, bindInNetnsNative, type NetnsSockets } from '../../adapters/netns-sockets.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { Timer, TimerClock } from '../../core/clock.js';
import { BindRetries, rescanDelayMs } from '../../core/dns/sandbox-retry.js';
import { toMeshError } from '../../core/errors.js';

export { retryDelayMs } from '../../core/dns/sandbox-retry.js';

export const SANDBOX_DNS_ADDR = '127.0.0.11';
export const SANDBOX_DNS_PORT = 53;
const DEFAULT_RESCAN_MS = 2000;

export interface SandboxBinderOptions {
  /** Task namespace prefix, e.g. `mlab-L-n1-t-` or `meshd-t-`; the rest of the name is the task's short id. */
  taskNsPrefix: string;
  server: DnsServer;
  exec: Exec;
  log: Logger;
  /** Time, the rescan timer and the scan loop's timers. */
  clock: TimerClock;
  /** Networks (registry names, preference order) of the task with this short id; undefined = not known yet. */
  networksOf: (shortId: string) => readonly string[] | undefined;
  /** Directory of named namespaces (default /run/netns). */
  netnsDir?: string;
  rescanMs?: number;
  /** Test seam: how sockets are bound inside a namespace. */
  bind?: (netns: string) => Promise<NetnsSockets>;
}

interface Bound {
  readonly shortId: string;
  readonly tag: SandboxTag;
  readonly close: () => Promise<void>;
  readonly boundAt: number;
}

export interface SandboxView {
  netns: string;
  networks: readonly string[] | null;
  boundMs: number;
  /** Its UDP socket's id in the server's per-process socket report (null: not attached). */
  socketId: number | null;
}

/** True when two network lists are equal (same order). */
export function sameNetworks(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  return a.every((x, i) => x === b[i]);
}

export class SandboxBinder {
  private readonly bound = new Map<string, Bound>();
  private readonly retries = new BindRetries();
  private readonly binding = new Map<string, Promise<void>>();
  private watcher: FSWatcher | undefined;
  private timer: Timer | undefined;
  /** When `timer` fires (clock ms). */
  private timerAt = Infinity;
  /** The scan loop (created at start: a stopped loop stays stopped). */
  private loop: ReconcileLoop<'scan'> | undefined;
  private stopped = true;
  binds = 0;
  bindFailures = 0;
  lastBindMs = 0;

  constructor(private readonly o: SandboxBinderOptions) {}

  private get dir(): string {
    return this.o.netnsDir ?? '/run/netns';
  }

  start(): void {
    this.stopped = false;
    this.loop = new ReconcileLoop<'scan'>({
      clock: this.o.clock,
      run: () => this.scan(),
      // scan() only throws on a bug (binds record their own failures): retried with back-off.
      onError: (err) => this.o.log.error({ err }, 'dns: sandbox scan failed'),
    });
    this.watchDir();
    this.kick();
    this.arm();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    this.timer?.cancel();
    this.timer = undefined;
    await this.loop?.stop();
    await Promise.all([...this.bound.values()].map((b) => b.close()));
    this.bound.clear();
  }

  /** Re-reads every bound sandbox's networks (call after the registry's inputs changed). */
  refreshNetworks(): void {
    for (const b of this.bound.values()) {
      const nets = this.o.networksOf(b.shortId);
      if (sameNetworks(nets, b.tag.networks)) continue;
      b.tag.networks = nets ? Object.freeze([...nets]) : undefined;
      this.o.server.retagSandbox(b.tag);
    }
  }

  /** Bound sandboxes and pending failures, for the stats route. */
  view(now: number): { bound: SandboxView[]; failing: Array<{ netns: string; attempts: number; error: string }> } {
    return {
      bound: [...this.bound].map(([netns, b]) => ({ netns, networks: b.tag.networks ?? null, boundMs: Math.round(now - b.boundAt), socketId: this.o.server.sandboxSocketId(b.tag) ?? null })).sort((a, b) => (a.netns < b.netns ? -1 : 1)),
      failing: this.retries.view(),
    };
  }

  /** Scans run so far (tests, stats). */
  get scans(): number {
    return this.loop?.counters.runs ?? 0;
  }

  /** Whether `netns` currently has our sockets. */
  has(netns: string): boolean {
    return this.bound.has(netns);
  }

  /** Requests a scan (coalesced: one at a time, one more if asked during a run). */
  kick(): void {
    if (!this.stopped) this.loop?.mark('scan');
  }

  /** Resolves when no scan is running or asked for. */
  async idle(): Promise<void> {
    await this.loop?.idle();
  }

  /**
   * The periodic rescan, sooner when a failed bind's retry is due (core/dns/sandbox-retry.ts).
   * Re-armed after a failed bind too: before, the first retry waited for the periodic rescan
   * (2 s) instead of its 250 ms.
   */
  private arm(): void {
    if (this.stopped) return;
    this.timer?.cancel();
    const now = this.o.clock.now();
    const delay = rescanDelayMs(now, this.o.rescanMs ?? DEFAULT_RESCAN_MS, this.retries.nextDeadline());
    this.timerAt = now + delay;
    this.timer = this.o.clock.setTimer(delay, () => {
      this.timer = undefined;
      if (!this.watcher) this.watchDir();
      this.kick();
      this.arm();
    });
  }

  /** inotify on the namespace directory; absent (no named namespace yet) → the rescan retries. */
  private watchDir(): void {
    try {
      this.watcher = watch(this.dir, () => this.kick());
      this.watcher.on('error', (e) => {
        this.o.log.warn({ err: e, dir: this.dir }, 'dns: namespace watch failed; relying on the periodic rescan');
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      /* still absent: the next rescan tries again */
    }
  }

  private list(): string[] {
    try {
      return readdirSync(this.dir).filter((n) => n.startsWith(this.o.taskNsPrefix) && n.length > this.o.taskNsPrefix.length);
    } catch {
      return [];
    }
  }

  private async scan(): Promise<void> {
    const present = new Set(this.list());
    for (const [ns, b] of this.bound) {
      if (present.has(ns)) continue;
      this.bound.delete(ns);
      await b.close();
      this.o.log.debug({ netns: ns }, 'dns: sandbox gone, sockets closed');
    }
    this.retries.retain(present);
    const now = this.o.clock.now();
    for (const ns of present) {
      if (this.stopped) return;
      if (this.bound.has(ns) || !this.retries.due(ns, now)) continue;
      await this.bindOne(ns);
    }
  }

  /**
   * Serves `netns` now if it is a task namespace of ours not served yet, and resolves true once it
   * is. A runtime can call this between plumbing a task and starting its process, so that even the
   * first lookup the program makes at startup finds the server (instead of a port-unreachable).
   */
  async ensure(netns: string): Promise<boolean> {
    if (this.stopped || !netns.startsWith(this.o.taskNsPrefix) || netns.length === this.o.taskNsPrefix.length) return false;
    if (!this.bound.has(netns)) {
      this.retries.clear(netns);
      await this.bindOne(netns);
    }
    return this.bound.has(netns);
  }

  /**
   * Without a test seam: the native addon's setns bind when the server loaded it (no process per
   * namespace), else the helper process (adapters/netns-sockets.ts).
   */
  private readonly defaultBind = (ns: string): Promise<NetnsSockets> => {
    const native = this.o.server.udpPath.addon?.bindInNetns;
    return native ? bindInNetnsNative(native, ns, SANDBOX_DNS_ADDR, SANDBOX_DNS_PORT) : bindInNetns(ns, SANDBOX_DNS_ADDR, SANDBOX_DNS_PORT);
  };

  /** One bind per namespace at a time (the watcher, the rescan and ensure() may race). */
  private bindOne(ns: string): Promise<void> {
    let p = this.binding.get(ns);
    if (!p) {
      p = this.doBind(ns).finally(() => this.binding.delete(ns));
      this.binding.set(ns, p);
    }
    return p;
  }

  private async doBind(ns: string): Promise<void> {
    if (this.bound.has(ns)) return;
    const shortId = ns.slice(this.o.taskNsPrefix.length);
    const t0 = this.o.clock.now();
    try {
      // 127.0.0.0/8 is only local once lo is up; the runtime does this too, idempotently. This can fail
      // when it runs between `ip netns add` creating the file (what the watch saw) and mounting the
      // namespace on it; the bind below then refuses a namespace that cannot route to 127.0.0.11 yet (a
      // socket bound there would answer from 127.0.0.1: native/meshd_netns.c local_route) and is retried.
      await this.o.exec.run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      const sockets = await (this.o.bind ?? this.defaultBind)(ns);
      if (this.stopped || !this.list().includes(ns)) {
        // stopped, or the namespace went while we were binding
        sockets.udp.close();
        sockets.tcp.close();
        return;
      }
      const nets = this.o.networksOf(shortId);
      const tag: SandboxTag = { networks: nets ? Object.freeze([...nets]) : undefined };
      const close = this.o.server.attachSandbox(sockets, tag);
      this.bound.set(ns, { shortId, tag, close, boundAt: this.o.clock.now() });
      this.retries.clear(ns);
      this.binds++;
      this.lastBindMs = this.o.clock.now() - t0;
      this.o.log.info({ netns: ns, networks: tag.networks, ms: this.lastBindMs }, 'dns: serving 127.0.0.11:53 in task namespace');
    } catch (e) {
      const err = toMeshError(e);
      const attempts = this.retries.failed(ns, this.o.clock.now(), err.message);
      this.bindFailures++;
      if ((this.retries.nextDeadline() ?? Infinity) < this.timerAt) this.arm();
      (attempts >= 3 ? this.o.log.warn.bind(this.o.log) : this.o.log.debug.bind(this.o.log))({ err, netns: ns, attempts }, 'dns: cannot bind 127.0.0.11:53 in task namespace (retrying)');
    }
  }
}
