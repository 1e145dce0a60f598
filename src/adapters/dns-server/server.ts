/**
 * The embedded DNS server's sockets: UDP and TCP on each configured address (one server per node; the
 * agent redirects 127.0.0.11:53 of every sandbox here). Packet logic lives in DnsHandler.
 *
 * TCP (RFC 7766): 2-byte length framing, several queries per connection (pipelined, replies in completion
 * order), idle timeout, a bound on connections (excess connections are closed at once) and on frames in
 * flight per connection (excess frames are dropped and counted).
 *
 * Port 0 binds TCP first on an ephemeral port and then UDP on the same number, so one port serves both
 * (what clients like dig expect when retrying over TCP).
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer, isIPv6, type Server as TcpServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import DNS from 'dns2';
import type { Rng } from '../../core/clock.js';
import { MeshError } from '../../core/errors.js';
import type { DnsRegistry } from '../../core/dns/registry.js';
import { explain, type Explanation } from '../../core/dns/resolver.js';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../clock.js';
import { Forwarder, parseResolvConf, type Upstream } from './forwarder.js';
import { DnsHandler, type NetworksOf } from './handler.js';
import { countDrop, emptySocketCounters, RCODE_NAMES, sumStats, type DnsServerStats, type ProcessSockets, type UdpSocketCounters } from './stats.js';
import { DnsWorkerPool } from './workers.js';
import { perWorkerPendingBound } from '../../core/dns/snapshot.js';
import { decodeQuery } from '../../core/dns/wire.js';
import { createDnsUdpSocket, plainAddress, serveUdp, useLiteralLookup } from './udp.js';
import { chooseUdpPath, type UdpPath, type UdpPathChoice } from './native-udp.js';

const { Packet } = DNS;

export interface ListenAddress {
  readonly address: string;
  /** 0 = ephemeral (the same number for UDP and TCP). */
  readonly port: number;
}

export interface DnsServerOptions {
  readonly registry: DnsRegistry;
  /** Where to listen, UDP and TCP on each (default 127.0.0.1:53). */
  readonly listen?: readonly ListenAddress[];
  readonly networksOf?: NetworksOf;
  readonly defaultNetworks?: readonly string[];
  readonly ttlSec?: number;
  readonly maxUdpPayload?: number;
  readonly cacheMaxEntries?: number;
  /** Upstream resolvers; when absent, read from `resolvConfPath`. Our own listen addresses are skipped. */
  readonly upstreams?: readonly Upstream[];
  /** resolv.conf to read upstreams from when `upstreams` is absent (default none: no forwarding). */
  readonly resolvConfPath?: string;
  readonly forwardTimeoutMs?: number;
  readonly maxPendingForwards?: number;
  /** Max simultaneous TCP connections (default 256). */
  readonly maxTcpConnections?: number;
  /** Close idle TCP connections after this many ms (default 10 000). */
  readonly tcpIdleTimeoutMs?: number;
  /** Socket receive buffer for UDP (bytes, default 4 MiB: absorbs bursts). */
  readonly udpRecvBufferBytes?: number;
  readonly rng?: Rng;
  /** Clock for `explain` ages (default the process monotonic clock; must match the registry's `now`). */
  readonly clock?: Clock;
  /**
   * Processes serving the UDP sockets, this one included (default 1: no extra process). N > 1 forks N − 1
   * DNS workers (workers.ts) that read the same sockets; `maxPendingForwards` is then split between the
   * processes (⌈max / N⌉ each). TCP is served by this process only.
   */
  readonly workers?: number;
  /** How often workers pick up registry changes, ms (default 20). */
  readonly workerSyncMs?: number;
  /** How often workers report counters, ms (default 1000). */
  readonly workerStatsMs?: number;
  /** Worker trouble (start failures, exits, respawns): for the agent's log. */
  readonly onWorkerEvent?: (event: string, detail: Record<string, unknown>) => void;
  /**
   * UDP receive/send path (native-udp.ts): `auto` (default) runs the native batched path when its addon
   * loads, else dgram; `native` requires the addon (MESHD_BAD_CONFIG otherwise); `js` is dgram only.
   */
  readonly udp?: UdpPathChoice;
}

/** Which UDP path serves this server's sockets, and how many sockets each path took. */
export interface UdpPathReport {
  readonly path: 'native' | 'js';
  readonly reason: string;
  readonly sockets: { native: number; js: number };
  /** Why the last socket that could not go native fell back to dgram (undefined: none did). */
  readonly lastFallback: string | undefined;
}

/** The Forwarder's own default bound on pending forwards (node-wide figure split between workers). */
const DEFAULT_MAX_PENDING = 256;

const MAX_TCP_INFLIGHT = 64;

/** Networks of the sandbox a set of attached sockets lives in (mutable holder; see attachSandbox). */
export interface SandboxTag {
  /** undefined = not known yet: the server's `networksOf` decides (REFUSED by default in the agent). */
  networks: readonly string[] | undefined;
}

export interface DebugReport extends Explanation {
  /** Set when the name is not ours: what the upstream said (or why nobody did). */
  readonly upstream: { address: string | undefined; port: number | undefined; ms: number; rcode: string; answers: string[]; note: string | undefined } | undefined;
}

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
    const e = this.explain(networks, name, qtype);
    if (e.outcome !== 'forward') return { ...e, upstream: undefined };
    const p = new Packet();
    p.header.id = randomInt(0x10000);
    p.header.rd = 1;
    p.questions.push({ name: e.question.name, type: qtype, class: 1 } as never);
    const buf = p.toBuffer();
    const d = decodeQuery(buf);
    if (!d.ok) throw new MeshError('MESHD_BAD_ARGUMENT', `dns: cannot build a query for ${JSON.stringify(name)}: ${d.drop ? d.reason : d.reason}`);
    const t0 = performance.now();
    const upstream = await new Promise<DebugReport['upstream']>((resolve) => {
      const started = this.forwarder.forward(buf, d.query, false, (reply, up) => {
        const ms = Math.round((performance.now() - t0) * 100) / 100;
        if (!reply || !up) return resolve({ address: undefined, port: undefined, ms, rcode: 'SERVFAIL', answers: [], note: 'no upstream answered within the forward timeout' });
        const r = Packet.parse(reply);
        resolve({
          address: up.address,
          port: up.port,
          ms,
          rcode: RCODE_NAMES[r.header.rcode] ?? `RCODE${r.header.rcode}`,
          answers: r.answers.map((a) => {
            const x = a as unknown as { name: string; type: number; ttl: number; address?: string; domain?: string; data?: unknown };
            return `${x.name} ${x.ttl} ${x.type} ${x.address ?? x.domain ?? JSON.stringify(x.data ?? '')}`;
          }),
          note: undefined,
        });
      });
      if (!started) resolve({ address: undefined, port: undefined, ms: 0, rcode: 'SERVFAIL', answers: [], note: this.forwarder.hasUpstreams ? 'pending-forward bound reached' : 'no upstream resolvers configured' });
    });
    return { ...e, upstream };
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
    c.setNoDelay(true);
    c.setTimeout(this.opts.tcpIdleTimeoutMs ?? 10_000, () => {
      countDrop(this.handler.stats, 'tcp-idle');
      c.destroy();
    });
    let buf: Buffer = Buffer.alloc(0);
    let inflight = 0;
    c.on('error', () => countDrop(this.handler.stats, 'tcp-error'));
    c.on('close', () => this.conns.delete(c));
    c.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const frame = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        if (inflight >= MAX_TCP_INFLIGHT) {
          countDrop(this.handler.stats, 'tcp-inflight');
          continue;
        }
        inflight++;
        const replies = this.handler.handle(frame, plainAddress(c.remoteAddress ?? ''), c.remotePort ?? 0, 'tcp', (out) => {
          inflight--;
          if (c.destroyed || this.closing) return;
          const framed = Buffer.allocUnsafe(out.length + 2);
          framed.writeUInt16BE(out.length, 0);
          out.copy(framed, 2);
          c.write(framed);
        }, tag?.networks);
        if (!replies) inflight--; // dropped: no reply will come
      }
    });
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
