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
 * IPv6 (dual-stack or IPv6-only underlay): one listener per port on EACH of the node's IPv6
 * underlay addresses too (`addresses`), the same way: the `ip6` host table leaves proxied ports out
 * of its DNAT set exactly like the `ip` one (one shared set), so a client's IPv6 connection reaches
 * the socket bound to the address it dialled, and the header names the client's IPv6 address and
 * that address (v1 `PROXY TCP6`, v2 AF_INET6). Listening on the real addresses, not a fixed
 * address the table would DNAT to, keeps the header's destination the address the client dialled
 * (a DNATed socket only sees the new one). Upstream stays the sandbox's IPv4 host-link address for
 * every listener: the header carries the client, and behind the sandbox the task needs no IPv6.
 * The IPv6 underlay addresses are re-read at each periodic check (ingress-side.ts), so an address
 * added at runtime gets its listeners then and a removed one loses them.
 *
 * Order on a change (ingress-side.ts programHost): listeners are opened BEFORE the host table
 * stops DNATing their port (while both exist the DNAT wins in prerouting: no connection is lost,
 * it just has no header yet) and closed AFTER the table DNATs a port again.
 * While the agent is down, these ports refuse connections (the listener went with the process).
 */
import { newProxyStats, ProxyListener, type ProxyStats } from '../../adapters/proxy-listener.js';
import { MeshError } from '../../core/errors.js';
import type { IngressPublish, Proto } from '../../core/lb/model.js';
import type { ProxyVersion } from '../../core/proxy-protocol.js';

export interface ProxyPortsOptions {
  /** The node's advertised underlay address: where published ports arrive (always listened on). */
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

/**
 * The published ports the host tables (`ip` and `ip6`: one shared set) DNAT to the sandbox: all
 * but the TCP ports of `proxied` (their listeners take them on every address, both families).
 */
export function dnatPortsOf(ingress: readonly IngressPublish[], proxied: ReadonlyMap<number, ProxyVersion>): Array<{ proto: Proto; port: number }> {
  return ingress.filter((g) => g.proto !== 'tcp' || !proxied.has(g.publishedPort)).map((g) => ({ proto: g.proto, port: g.publishedPort }));
}

/**
 * The addresses proxied ports are served on: `host` first, then the node's other IPv6 underlay
 * addresses (`underlay6`, which on an IPv6-only underlay already holds `host`), sorted, once each.
 */
export function proxyAddresses(host: string, underlay6: readonly string[]): string[] {
  return [host, ...[...new Set(underlay6)].filter((a) => a !== host).sort()];
}

export class ProxyPorts {
  readonly stats: ProxyStats = newProxyStats();
  /** Open listeners by port, then by address. */
  private readonly listeners = new Map<number, Map<string, ProxyListener>>();
  /** Last bind failure per port and address (status; cleared when it binds). */
  private readonly failed = new Map<number, Map<string, string>>();

  constructor(private readonly o: ProxyPortsOptions) {}

  /**
   * Opens listeners for `want` not open yet on every address of `proxyAddresses(host, underlay6)`
   * and sets the header version of open ones. Returns the ports that could not be bound on some
   * address (with why); the caller still programs the host table and then throws, so the
   * reconcile loop retries with back-off.
   */
  async open(want: ReadonlyMap<number, ProxyVersion>, underlay6: readonly string[] = []): Promise<Map<number, string>> {
    const errors = new Map<number, string>();
    const hosts = proxyAddresses(this.o.host, underlay6);
    for (const [port, version] of want) {
      let byHost = this.listeners.get(port);
      for (const host of hosts) {
        const cur = byHost?.get(host);
        if (cur) {
          cur.setVersion(version);
          continue;
        }
        const l = new ProxyListener({
          host, port, upstream: { host: this.o.upstreamHost, port }, version,
          maxConnections: this.o.maxConnections, idleTimeoutMs: this.o.idleTimeoutMs, stats: this.stats,
        });
        try {
          await l.listen();
          if (!byHost) this.listeners.set(port, (byHost = new Map()));
          byHost.set(host, l);
          this.failed.get(port)?.delete(host);
          if (this.failed.get(port)?.size === 0) this.failed.delete(port);
        } catch (e) {
          const msg = e instanceof Error ? e.message : String(e);
          errors.set(port, errors.has(port) ? `${errors.get(port)}; ${msg}` : msg);
          let f = this.failed.get(port);
          if (!f) this.failed.set(port, (f = new Map()));
          f.set(host, msg);
        }
      }
    }
    return errors;
  }

  /**
   * Closes listeners of ports no longer in `want`, and those on an address no longer among
   * `proxyAddresses(host, underlay6)` (an IPv6 underlay address gone); their open connections are reset.
   */
  async closeStale(want: ReadonlyMap<number, ProxyVersion>, underlay6: readonly string[] = []): Promise<void> {
    const hosts = new Set(proxyAddresses(this.o.host, underlay6));
    for (const [port, byHost] of [...this.listeners]) {
      for (const [host, l] of [...byHost]) {
        if (want.has(port) && hosts.has(host)) continue;
        byHost.delete(host);
        await l.close();
      }
      if (byHost.size === 0) this.listeners.delete(port);
    }
    for (const [port, f] of [...this.failed]) {
      for (const host of [...f.keys()]) if (!want.has(port) || !hosts.has(host)) f.delete(host);
      if (f.size === 0) this.failed.delete(port);
    }
  }

  async closeAll(): Promise<void> {
    await this.closeStale(new Map());
  }

  /** The bind failures of `open`, as one error for the reconcile loop. */
  static failure(errors: ReadonlyMap<number, string>): MeshError {
    return new MeshError('MESHD_EXEC_FAILED', `proxy-protocol ports not served: ${[...errors.values()].join('; ')}`, { ports: [...errors.keys()] });
  }

  /**
   * `proxyProtocol` part of GET /v1/lb/status: `listeners` on the advertised address (one per
   * port), `failed` by port (each message names its address) and, only when some are open,
   * `underlay6Listeners`: those on the node's other (IPv6) underlay addresses.
   */
  status(): object {
    const all = [...this.listeners.values()].flatMap((m) => [...m.values()]);
    const row = (l: ProxyListener) => ({ port: l.port, version: l.currentVersion, connections: l.connections });
    const extra = all.filter((l) => l.host !== this.o.host).map((l) => ({ host: l.host, ...row(l) }));
    return {
      listeners: all.filter((l) => l.host === this.o.host).map(row),
      ...(extra.length ? { underlay6Listeners: extra } : {}),
      failed: Object.fromEntries([...this.failed].map(([port, f]) => [port, [...f.values()].join('; ')])),
      stats: this.stats,
      maxConnections: this.o.maxConnections,
      idleTimeoutMs: this.o.idleTimeoutMs,
    };
  }
}
