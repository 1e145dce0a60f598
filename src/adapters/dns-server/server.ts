/**
 * The embedded DNS server's sockets: UDP and TCP on each configured address (one server per node; the
 * agent redirects 127.0.0.11:53 of every sandbox here). Packet logic lives in DnsHandler.
 *
 * TCP (RFC 7766): a bound on connections (excess connections are closed at once); framing, pipelining, the
 * idle timeout and the bound on frames in flight per connection are tcp.ts's. `netctl debug dns`'s upstream
 * half is debug.ts's; the options and reported shapes are in types.ts.
 *
 * Port 0 binds TCP first on an ephemeral port and then UDP on the same number, so one port serves both
 * (what clients like dig expect when retrying over TCP).
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type Server as TcpServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { MeshError } from '../../core/errors.js';
import { explain, type Explanation } from '../../core/dns/resolver.js';
import { systemClock } from '../clock.js';
import { Forwarder, parseResolvConf, type Upstream } from './forwarder.js';
import { DnsHandler } from './handler.js';
import { countDrop, emptySocketCounters, sumStats, type DnsServerStats, type ProcessSockets, type UdpSocketCounters } from './stats.js';
import { DnsWorkerPool } from './workers.js';
import { perWorkerPendingBound } from '../../core/dns/snapshot.js';
import { createDnsUdpSocket, serveUdp, useLiteralLookup } from './udp.js';
import { chooseUdpPath, type UdpPath } from './native-udp.js';
import { debugReport, type DebugReport } from './debug.js';
import { serveTcpConnection } from './tcp.js';
import type { DnsServerOptions, ListenAddress, SandboxTag, UdpPathReport } from './types.js';

export type { DnsServerOptions, ListenAddress, SandboxTag, UdpPathReport } from './types.js';
export type { DebugReport } from './debug.js';

/** The Forwarder's own default bound on pending forwards (node-wide figure split between workers). */
const DEFAULT_MAX_PENDING = 256;

export class DnsServer {
  readonly handler: DnsHandler;
  readonly forwarder: Forwarder;
  private readonly opts: DnsServerOptions;
  private readonly udp: UdpSocket[] = [];
  private readonly tcp: TcpServer[] = [];
  private readonly conns = new Set<Socket>();
  private bound: ListenAddress[] = [];
  private closing = false;
  private sandboxes = 0;
  private readonly processes: number;
  private pool: DnsWorkerPool | undefined;
  private poolStarted: Promise<void> = Promise.resolve();
  /** UDP sockets served by the workers too: socket → pool id. */
  private readonly sharedIds = new Map<UdpSocket, number>();
  private readonly tagSockets = new Map<SandboxTag, UdpSocket>();
  /** This process's counters of each UDP socket it serves; the id is the one the workers report too. */
  private readonly sockCounters = new Map<UdpSocket, UdpSocketCounters>();
  private nextSocketId = 1;
  /** The UDP path chosen at construction (once per process). */
  readonly udpPath: UdpPath;
  private readonly udpSockets = { native: 0, js: 0 };
  private lastFallback: string | undefined;

  constructor(opts: DnsServerOptions) {
    this.opts = opts;
    this.udpPath = chooseUdpPath(opts.udp ?? 'auto');
    const listen = opts.listen ?? [{ address: '127.0.0.1', port: 53 }];
    let upstreams: Upstream[] = [...(opts.upstreams ?? [])];
    if (!opts.upstreams && opts.resolvConfPath) {
      let text: string;
      try {
        text = readFileSync(opts.resolvConfPath, 'utf8');
      } catch (e) {
        throw new MeshError('MESHD_BAD_CONFIG', `dns: cannot read ${opts.resolvConfPath}: ${(e as Error).message}`, undefined, { cause: e });
      }
      upstreams = parseResolvConf(text).map((address) => ({ address, port: 53 }));
    }
    // Never forward to ourselves (a resolv.conf pointing at our own listener would loop).
    upstreams = upstreams.filter((u) => !listen.some((l) => l.address === u.address && l.port === u.port));
    this.processes = opts.workers ?? 1;
    if (!Number.isInteger(this.processes) || this.processes < 1 || this.processes > 64) throw new MeshError('MESHD_BAD_CONFIG', `dns: workers must be an integer in 1..64, got ${this.processes}`);
    const maxPending = perWorkerPendingBound(opts.maxPendingForwards ?? DEFAULT_MAX_PENDING, this.processes);
    this.forwarder = new Forwarder({ upstreams, timeoutMs: opts.forwardTimeoutMs, maxPending });
    this.handler = new DnsHandler({
      registry: opts.registry,
      forwarder: this.forwarder,
      networksOf: opts.networksOf,
      defaultNetworks: opts.defaultNetworks,
      ttlSec: opts.ttlSec,
      maxUdpPayload: opts.maxUdpPayload,
      cacheMaxEntries: opts.cacheMaxEntries,
      rng: opts.rng,
    });
    if (this.processes > 1) {
      this.pool = new DnsWorkerPool({
        count: this.processes - 1,
        registry: opts.registry,
        syncMs: opts.workerSyncMs,
        onEvent: opts.onWorkerEvent,
        init: {
          ttlSec: this.handler.ttlSec,
          maxUdpPayload: this.handler.maxUdpPayload,
          cacheMaxEntries: opts.cacheMaxEntries,
          upstreams,
          forwardTimeoutMs: opts.forwardTimeoutMs,
          maxPendingForwards: maxPending,
          // A custom networksOf cannot cross processes: workers then refuse what it would have had to map.
          defaultNetworks: opts.networksOf ? null : [...(opts.defaultNetworks ?? ['default'])],
          statsMs: opts.workerStatsMs ?? 1000,
          udp: this.udpPath.path,
        },
      });
    }
  }

  /** Binds every listen address (UDP + TCP). Rejects with MESHD_BAD_CONFIG when a bind fails. */
  async start(): Promise<ListenAddress[]> {
    const listen = this.opts.listen ?? [{ address: '127.0.0.1', port: 53 }];
    try {
      for (const l of listen) this.bound.push(await this.bindPair(l));
    } catch (e) {
      await this.close();
      throw e instanceof MeshError ? e : new MeshError('MESHD_BAD_CONFIG', `dns: cannot listen: ${(e as Error).message}`, undefined, { cause: e });
    }
    if (this.pool) {
      // Node listeners are shared only when the workers can map their sources (default networksOf).
      if (!this.opts.networksOf) for (const u of this.udp) this.sharedIds.set(u, this.pool.share(u, undefined, this.sockCounters.get(u)?.id));
      this.poolStarted = this.pool.start();
    }
    return [...this.bound];
  }

  /** Resolves once every worker process started (or failed and was left to respawn). */
  workersReady(): Promise<void> {
    return this.poolStarted;
  }

  /** Worker pids (empty with workers = 1). */
  workerPids(): number[] {
    return this.pool?.pids() ?? [];
  }

  /** Bound addresses (ports resolved). */
  addresses(): ListenAddress[] {
    return [...this.bound];
  }

  /** Counters of every process serving this server's sockets (workers: as of their last report, ≤ 1 s old). */
  stats(): DnsServerStats {
    return this.pool ? sumStats([this.handler.snapshot(), this.pool.stats()]) : this.handler.snapshot();
  }

  /** Like stats(), after asking every worker for fresh counters (waits ≤ 500 ms). */
  async collectStats(): Promise<DnsServerStats> {
    return this.pool ? sumStats([this.handler.snapshot(), await this.pool.collect()]) : this.handler.snapshot();
  }

  /** How a sandbox on `networks` would see `name` from the registry alone (entries, owner node, age). */
  explain(networks: readonly string[], name: string, qtype: number): Explanation {
    return explain(this.opts.registry, networks, name, qtype, (this.opts.clock ?? systemClock).now());
  }

  /**
   * `netctl debug dns NAME [--from TASK] [--type T]`: resolves exactly as that sandbox would. A registry
   * answer is explained (entries, owner, age); a name that is not ours is really forwarded (same
   * forwarder, same bound and timeout) and the report says which upstream answered and what it said.
   * dns2 builds the query and decodes the upstream's answer (not a hot path).
   */
  async debug(networks: readonly string[], name: string, qtype: number): Promise<DebugReport> {
    return debugReport(this.forwarder, this.explain(networks, name, qtype), name, qtype);
  }

  private async bindPair(l: ListenAddress): Promise<ListenAddress> {
    for (let tries = 0; ; tries++) {
      const srv = await this.listenTcp(l.address, l.port);
      const port = (srv.address() as { port: number }).port;
      try {
        const sock = await this.listenUdp(l.address, port);
        this.tcp.push(srv);
        this.udp.push(sock);
        return { address: l.address, port };
      } catch (e) {
        await new Promise<void>((r) => srv.close(() => r()));
        if (l.port !== 0 || tries >= 20) throw e;
      }
    }
  }

  private listenTcp(address: string, port: number): Promise<TcpServer> {
    return new Promise((resolve, reject) => {
      const srv = createServer((c) => this.onConnection(c));
      srv.maxConnections = this.opts.maxTcpConnections ?? 256;
      srv.once('error', reject);
      srv.listen({ host: address, port, exclusive: true }, () => {
        srv.off('error', reject);
        srv.on('error', () => countDrop(this.handler.stats, 'tcp-server-error'));
        resolve(srv);
      });
    });
  }

  private listenUdp(address: string, port: number): Promise<UdpSocket> {
    return new Promise((resolve, reject) => {
      const sock = createDnsUdpSocket(isIPv6(address) ? 'udp6' : 'udp4', this.opts.udpRecvBufferBytes ?? 4 << 20);
      sock.once('error', reject);
      sock.bind({ address, port, exclusive: true }, () => {
        sock.off('error', reject);
        this.serveUdp(sock, undefined);
        resolve(sock);
      });
    });
  }

  /**
   * Answers datagrams arriving on a bound UDP socket (`tag`: the networks of the sandbox it lives in).
   * Returns the socket's id (its counters' id here and in every worker).
   */
  private serveUdp(sock: UdpSocket, tag: SandboxTag | undefined): number {
    const counters = emptySocketCounters(this.nextSocketId++);
    this.sockCounters.set(sock, counters);
    const got = serveUdp(sock, this.handler, tag, () => this.closing, this.udpPath, (reason) => {
      this.lastFallback = reason;
    }, counters);
    this.udpSockets[got]++;
    return counters.id;
  }

  /**
   * Every process's view of the UDP sockets it serves — this one's now, the workers' as of their last
   * report (collectStats() refreshes them): which process read a socket's datagrams and what it answered.
   */
  socketReport(): ProcessSockets[] {
    const own: ProcessSockets = { role: 'agent', pid: process.pid, sockets: [...this.sockCounters.values()].map((c) => ({ ...c, fds: [...c.fds] })) };
    return [own, ...(this.pool?.socketReport() ?? [])];
  }

  /** The id under which an attached sandbox's UDP socket appears in socketReport() (undefined: not attached). */
  sandboxSocketId(tag: SandboxTag): number | undefined {
    const sock = this.tagSockets.get(tag);
    return sock ? this.sockCounters.get(sock)?.id : undefined;
  }

  /** The UDP path of this process (workers choose theirs alike and report a fallback as a worker error). */
  udpReport(): UdpPathReport {
    return { path: this.udpPath.path, reason: this.udpPath.reason, sockets: { ...this.udpSockets }, lastFallback: this.lastFallback };
  }

  /**
   * Serves sockets bound somewhere else — typically 127.0.0.11:53 inside a task's network namespace,
   * created there by a helper process and passed to us (netns-sockets.ts) — as part of this server: same
   * registry, cache, forwarder and counters. Every query arriving on them is resolved for `tag.networks`
   * (read per packet: the caller may replace the array when the sandbox's networks change). Returns a
   * function that stops serving them, closes them and their TCP connections (idempotent).
   */
  attachSandbox(sockets: { udp: UdpSocket; tcp: TcpServer }, tag: SandboxTag): () => Promise<void> {
    if (this.closing) throw new MeshError('MESHD_NOT_READY', 'dns: server is closed');
    const conns = new Set<Socket>();
    useLiteralLookup(sockets.udp);
    const sockId = this.serveUdp(sockets.udp, tag);
    const id = this.pool?.share(sockets.udp, tag.networks, sockId);
    if (id !== undefined) this.sharedIds.set(sockets.udp, id);
    this.tagSockets.set(tag, sockets.udp);
    sockets.tcp.maxConnections = this.opts.maxTcpConnections ?? 256;
    sockets.tcp.on('error', () => countDrop(this.handler.stats, 'tcp-server-error'));
    sockets.tcp.on('connection', (c: Socket) => {
      conns.add(c);
      c.on('close', () => conns.delete(c));
      this.onConnection(c, tag);
    });
    this.sandboxes++;
    let closed: Promise<void> | undefined;
    return () => {
      closed ??= (async () => {
        this.sandboxes--;
        this.tagSockets.delete(tag);
        this.sockCounters.delete(sockets.udp);
        const shared = this.sharedIds.get(sockets.udp);
        this.sharedIds.delete(sockets.udp);
        if (shared !== undefined) await this.pool?.unshare(shared);
        for (const c of conns) c.destroy();
        await Promise.all([
          new Promise<void>((r) => { try { sockets.udp.close(() => r()); } catch { r(); } }),
          new Promise<void>((r) => sockets.tcp.close(() => r())),
        ]);
      })();
      return closed;
    };
  }

  /** Call after changing `tag.networks` of an attached sandbox: worker processes learn the new networks. */
  retagSandbox(tag: SandboxTag): void {
    const sock = this.tagSockets.get(tag);
    const id = sock ? this.sharedIds.get(sock) : undefined;
    if (id !== undefined) this.pool?.retag(id, tag.networks);
  }

  /** Sandboxes currently attached (attachSandbox calls not yet closed). */
  get attachedSandboxes(): number {
    return this.sandboxes;
  }

  private onConnection(c: Socket, tag?: SandboxTag): void {
    if (this.closing) {
      c.destroy();
      return;
    }
    this.conns.add(c);
    c.on('close', () => this.conns.delete(c));
    serveTcpConnection(c, this.handler, tag, () => this.closing, this.opts.tcpIdleTimeoutMs ?? 10_000);
  }

  /** Stops listening, closes every connection, fails pending forwards. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    await this.pool?.close();
    this.sharedIds.clear();
    this.sockCounters.clear();
    this.forwarder.close();
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    await Promise.all([
      ...this.udp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))),
      ...this.tcp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))),
    ]);
    this.bound = [];
  }
}
