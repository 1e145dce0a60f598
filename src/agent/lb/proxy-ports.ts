/**
 * Published ports with `proxy-protocol=v1|v2` on this node (issue 19 §6). The kernel's L4 path
 * cannot add bytes to a stream, so for such a port:
 *
 *   client ─► underlay:published  (the host table does NOT DNAT this port: the socket below gets it)
 *   agent: ProxyListener on underlay:published writes the PROXY header (client addr:port → underlay:published)
 *          ─► 172.31.255.2:published (the ingress sandbox) ─► the kernel LB picks a task, masquerades
 *
 * Why through the ingress sandbox rather than to a task picked here: balancing, draining, the
 * overlay gate and the empty-port reject stay the kernel's (one implementation, one `debug lb`
 * view); the proxy only adds the header. The cost is a userspace copy (README: bench/proxy.ts).
 *
 * Order on a change (ingress-side.ts programHost): listeners are opened BEFORE the host table
 * stops DNATing their port (while both exist the DNAT wins in prerouting: no connection is lost,
 * it just has no header yet) and closed AFTER the table DNATs a port again.
 * While the agent is down, these ports refuse connections (the listener went with the process).
 */
import { newProxyStats, ProxyListener, type ProxyStats } from '../../adapters/proxy-listener.js';
import { MeshError } from '../../core/errors.js';
import type { IngressPublish } from '../../core/lb/model.js';
import type { ProxyVersion } from '../../core/proxy-protocol.js';

export interface ProxyPortsOptions {
  /** The node's underlay address: where published ports arrive. */
  host: string;
  /** Where the proxy connects (the ingress sandbox's host-link address); port = the published port. */
  upstreamHost: string;
  maxConnections: number;
  idleTimeoutMs: number;
}

/** Published TCP ports (policy cluster, mode ingress) that want a PROXY header, by port. */
export function proxyPortsOf(ingress: readonly IngressPublish[]): Map<number, ProxyVersion> {
  const out = new Map<number, ProxyVersion>();
  for (const g of ingress) {
    if (g.proxyProtocol && g.proto === 'tcp' && g.policy === 'cluster' && (g.mode ?? 'ingress') === 'ingress') out.set(g.publishedPort, g.proxyProtocol);
  }
  return out;
}

export class ProxyPorts {
  readonly stats: ProxyStats = newProxyStats();
  private readonly listeners = new Map<number, ProxyListener>();
  /** Last bind failure per port (status; cleared when it binds). */
  private readonly failed = new Map<number, string>();

  constructor(private readonly o: ProxyPortsOptions) {}

  /**
   * Opens listeners for `want` not open yet and sets the header version of open ones. Returns
   * the ports that could not be bound (with why); the caller still programs the host table and
   * then throws, so the reconcile loop retries with back-off.
   */
  async open(want: ReadonlyMap<number, ProxyVersion>): Promise<Map<number, string>> {
    const errors = new Map<number, string>();
    for (const [port, version] of want) {
      const cur = this.listeners.get(port);
      if (cur) {
        cur.setVersion(version);
        continue;
      }
      const l = new ProxyListener({
        host: this.o.host, port, upstream: { host: this.o.upstreamHost, port }, version,
        maxConnections: this.o.maxConnections, idleTimeoutMs: this.o.idleTimeoutMs, stats: this.stats,
      });
      try {
        await l.listen();
        this.listeners.set(port, l);
        this.failed.delete(port);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        errors.set(port, msg);
        this.failed.set(port, msg);
      }
    }
    return errors;
  }

  /** Closes listeners of ports no longer in `want` (their open connections are reset). */
  async closeStale(want: ReadonlyMap<number, ProxyVersion>): Promise<void> {
    for (const [port, l] of [...this.listeners]) {
      if (want.has(port)) continue;
      this.listeners.delete(port);
      await l.close();
    }
    for (const port of [...this.failed.keys()]) if (!want.has(port)) this.failed.delete(port);
  }

  async closeAll(): Promise<void> {
    await this.closeStale(new Map());
  }

  /** The bind failures of `open`, as one error for the reconcile loop. */
  static failure(errors: ReadonlyMap<number, string>): MeshError {
    return new MeshError('MESHD_EXEC_FAILED', `proxy-protocol ports not served: ${[...errors.values()].join('; ')}`, { ports: [...errors.keys()] });
  }

  /** `proxyProtocol` part of GET /v1/lb/status. */
  status(): object {
    return {
      listeners: [...this.listeners.values()].map((l) => ({ port: l.port, version: l.currentVersion, connections: l.connections })),
      failed: Object.fromEntries(this.failed),
      stats: this.stats,
      maxConnections: this.o.maxConnections,
      idleTimeoutMs: this.o.idleTimeoutMs,
    };
  }
}
