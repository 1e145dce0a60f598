/**
 * A small TCP proxy that writes a PROXY protocol header (src/core/proxy-protocol.ts) in front of
 * each accepted stream and splices it to one upstream address — for a published port with
 * `proxy-protocol=v1|v2`, the agent binds one on the node's underlay address:published port and
 * points it at the node's ingress sandbox, so balancing stays in the kernel (see
 * src/agent/lb/proxy-ports.ts for why that path).
 *
 * Bounds, each counted in `ProxyStats` (exported on /metrics), never logged-and-dropped:
 * - `maxConnections` (over all listeners sharing one `ProxyStats`): a connection over the bound
 *   is reset at accept (`rejected`);
 * - `idleTimeoutMs`: a connection that moves no byte in either direction that long is reset
 *   (`idle`); the upstream connect attempt has the same bound (`connect`);
 * - backpressure: `pipe()` both ways, so a slow reader stops the other side's reads instead of
 *   buffering without bound; half-close is kept (allowHalfOpen), a FIN travels through;
 * - the client's bytes are not read until the upstream is connected and the header is written
 *   (pauseOnConnect), so the header is always first.
 * An upstream that refuses (no backend: the ingress sandbox rejects) resets the client at once,
 * as the kernel path would.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { encodeProxyHeader, type ProxyVersion } from '../core/proxy-protocol.js';
import { MeshError } from '../core/errors.js';

/** Counters shared by every listener of a node (monotonic except `active`). */
export interface ProxyStats {
  accepted: number;
  active: number;
  /** Over `maxConnections`: reset without an upstream. */
  rejected: number;
  /** Connection-level failures by reason: `connect` (upstream refused / unreachable / timed out),
   *  `idle` (idle timeout), `client` / `upstream` (that side errored mid-stream), `header` (encoding). */
  errors: Record<'connect' | 'idle' | 'client' | 'upstream' | 'header', number>;
  /** Payload bytes client → upstream (`in`, header excluded) and upstream → client (`out`). */
  bytesIn: number;
  bytesOut: number;
}

export function newProxyStats(): ProxyStats {
  return { accepted: 0, active: 0, rejected: 0, errors: { connect: 0, idle: 0, client: 0, upstream: 0, header: 0 }, bytesIn: 0, bytesOut: 0 };
}

export interface ProxyListenerOptions {
  /** Where clients connect (the node's underlay address) and the published port. */
  host: string;
  port: number;
  upstream: { host: string; port: number };
  version: ProxyVersion;
  /** Connections open at once over every listener sharing `stats` (its `active`). */
  maxConnections: number;
  idleTimeoutMs: number;
  stats: ProxyStats;
}

export class ProxyListener {
  private server: Server | null = null;
  private readonly open = new Set<Socket>();
  private version: ProxyVersion;

  constructor(private readonly o: ProxyListenerOptions) {
    this.version = o.version;
  }

  get port(): number {
    return this.o.port;
  }

  /** The address it binds (an IPv6 one for a dual-stack node's IPv6 underlay addresses). */
  get host(): string {
    return this.o.host;
  }

  /** The header version written on NEW connections (a `service update` may switch it). */
  setVersion(v: ProxyVersion): void {
    this.version = v;
  }

  get currentVersion(): ProxyVersion {
    return this.version;
  }

  get connections(): number {
    return this.open.size / 2;
  }

  /** Binds; a failure (port in use, address gone) is MESHD_EXEC_FAILED naming the address. */
  async listen(): Promise<void> {
    if (this.server) return;
    const server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (c) => this.accept(c));
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error) => reject(new MeshError('MESHD_EXEC_FAILED', `proxy-protocol listener ${this.o.host}:${this.o.port}: ${e.message}`, undefined, { cause: e }));
      server.once('error', onErr);
      server.listen({ host: this.o.host, port: this.o.port, exclusive: true }, () => {
        server.off('error', onErr);
        resolve();
      });
    });
    // After the bind, a server error (EMFILE on accept) is counted, not fatal: the listener keeps serving.
    server.on('error', () => this.o.stats.errors.client++);
    this.server = server;
  }

  /** Stops accepting and resets every open connection through this listener. */
  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    for (const sock of this.open) sock.destroy();
    this.open.clear();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  private accept(client: Socket): void {
    const st = this.o.stats;
    st.accepted++;
    if (st.active >= this.o.maxConnections) {
      st.rejected++;
      client.resetAndDestroy();
      return;
    }
    const { remoteAddress, remotePort, localAddress, localPort } = client;
    let header: Buffer;
    try {
      header = encodeProxyHeader(this.version, { source: { address: remoteAddress ?? '', port: remotePort ?? 0 }, destination: { address: localAddress ?? '', port: localPort ?? 0 } });
    } catch {
      st.errors.header++;
      client.resetAndDestroy();
      return;
    }
    const up = createConnection({ host: this.o.upstream.host, port: this.o.upstream.port, allowHalfOpen: true, noDelay: true });
    this.open.add(client);
    this.open.add(up);
    st.active++;
    let connected = false;
    let done = false;
    /** Ends the pair once: counts a failure `why` (if any) and resets both sides. */
    const finish = (why: keyof ProxyStats['errors'] | null): void => {
      if (done) return;
      done = true;
      st.active--;
      st.bytesIn += Math.max(0, up.bytesWritten - header.length);
      st.bytesOut += up.bytesRead;
      this.open.delete(client);
      this.open.delete(up);
      if (why) {
        st.errors[why]++;
        if (!client.destroyed) client.resetAndDestroy();
        if (!up.destroyed) up.resetAndDestroy();
      }
    };
    client.setTimeout(this.o.idleTimeoutMs, () => finish('idle'));
    up.setTimeout(this.o.idleTimeoutMs, () => finish(connected ? 'idle' : 'connect'));
    client.on('error', () => finish('client'));
    up.on('error', () => finish(connected ? 'upstream' : 'connect'));
    up.once('connect', () => {
      connected = true;
      up.write(header);
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
    // A socket closes once both of its directions are done (pipe ends the other side's writable
    // when one side's FIN arrives, and flushes first); the pair is done when both have closed.
    let closed = 0;
    const oneClosed = () => {
      if (++closed === 2) finish(null);
    };
    client.once('close', oneClosed);
    up.once('close', oneClosed);
  }
}
