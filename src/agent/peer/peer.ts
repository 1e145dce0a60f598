/**
 * The peer subsystem: agent-to-agent debugging over mutual TLS with the node certificates the
 * cluster issues at join (ARCHITECTURE §1, "cluster identity"). netctl talks to ONE local agent;
 * that agent reaches the others:
 *
 *   netctl ─unix─► local agent  GET /v1/peers/NODE/v1/lb/status
 *                    │ NODE (name or underlay address) → member → IP, through gossip membership
 *                    └─HTTPS mTLS (this node's cert)─► NODE:peer.port  GET /v1/lb/status
 *                                                        (allowlist + role check, then its own Router)
 *
 * The server runs only while the node has a cluster identity (<dataDir>/cluster, written by the
 * manager link at init/join): it is picked up, swapped on renewal and dropped on leave by a check
 * every `checkEveryMs`, and at once when a forwarded request needs it. A peer that cannot be asked
 * is MESHD_PEER_UNREACHABLE with the reason; a peer's refusal (403) comes back as it is.
 *
 * Revocation: while serving, the agent fetches the cluster's revocation list from the managers
 * through the link (`fetchRevocations`) when the server starts and every `revocationRefreshMs`
 * (30 s, see revocations.ts for why), and refuses a revoked node's requests (403
 * MESHD_CERT_REJECTED, reason `revoked`). A failed fetch keeps the last list (refusing every peer
 * while the manager is away would cut debugging exactly when it is needed) and is retried with
 * back-off; a manager refusing THIS node's certificate means this node was removed: its own
 * forwards are then refused at once, before any peer is asked.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import type { ApiResult, Router } from '../../adapters/api/server.js';
import { STREAM_ERROR_TRAILER } from '../../adapters/api/server.js';
import type { Logger } from '../../adapters/logger.js';
import { hasNodeIdentity, loadNodeIdentity } from '../../adapters/pki/files.js';
import { MeshError, fromErrorJSON, toMeshError } from '../../core/errors.js';
import { formatHostPort, hostOfAddr } from '../../core/hostport.js';
import type { Subsystem } from '../../adapters/api/subsystem.js';
import { peerRequest, type PeerCredentials } from './client.js';
import { PeerServer } from './server.js';
import { peerPath, peerRouteAccess, resolvePeer, type PeerMember } from './policy.js';
import { EMPTY_REVOKED, isRevokedIn, parseRevocations, REVOCATION_REFRESH_MS, revocationRetryMs, type RevokedSet } from './revocations.js';

export interface PeerOptions {
  nodeName: string;
  advertiseAddr: string;
  /** The agent's data directory; the identity is read from <dataDir>/cluster. */
  dataDir: string;
  /** Config `peer`. */
  enabled: boolean;
  port: number;
  timeoutMs: number;
  /** Gossip membership as this node sees it. */
  members: () => readonly PeerMember[];
  log: Logger;
  /** Identity check period, ms (default 2000). */
  checkEveryMs?: number;
  /** The manager's GET /v1/revocations, through the link's manager pool; unset: no revocation check. */
  fetchRevocations?: () => Promise<unknown>;
  /** Revocation list refresh period, ms (default REVOCATION_REFRESH_MS = 30 s). */
  revocationRefreshMs?: number;
}

/** Longest a forwarded exec may run before its answer (the worker caps exec at 600 s). */
const EXEC_HEADERS_MS = 610_000;

export class PeerSubsystem implements Subsystem {
  readonly name = 'peer';
  private router: Router | undefined;
  private readonly server: PeerServer;
  private creds: PeerCredentials | undefined;
  private timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;
  private lastError: string | null = null;
  private readonly dir: string;
  private revoked: RevokedSet = EMPTY_REVOKED;
  private revFetchedAt: number | null = null;
  private revFailures = 0;
  private revError: string | null = null;
  private selfRevoked: string | null = null;
  private revTimer: NodeJS.Timeout | undefined;
  private revFetching: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: PeerOptions) {
    this.dir = join(o.dataDir, 'cluster');
    this.server = new PeerServer({ router: () => this.router, log: o.log, isRevoked: (id, serial) => isRevokedIn(this.revoked, id, serial) });
  }

  async start(): Promise<void> {
    await this.sync();
    const every = this.o.checkEveryMs ?? 2000;
    const tick = () => {
      this.timer = setTimeout(() => void this.sync().finally(() => this.timer && tick()), every);
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const t = this.timer;
    this.timer = undefined;
    if (t) clearTimeout(t);
    if (this.revTimer) clearTimeout(this.revTimer);
    this.revTimer = undefined;
    await this.syncing;
    await this.revFetching;
    await this.server.close();
  }

  /** One run at a time: a forwarded request and the timer may both ask. */
  private sync(): Promise<void> {
    this.syncing ??= this.doSync().finally(() => (this.syncing = undefined));
    return this.syncing;
  }

  /** Follows the identity on disk: serve when there is one, swap on renewal, stop on leave. */
  private async doSync(): Promise<void> {
    let next: PeerCredentials | undefined;
    try {
      if (hasNodeIdentity(this.dir)) {
        const id = loadNodeIdentity(this.dir);
        next = { caPem: id.caPem, certPem: id.certPem, keyPem: id.keyPem };
      }
    } catch (e) {
      // Half-written during a join, or damaged: say so once; the next check tries again.
      this.report(`node identity unreadable: ${toMeshError(e).message}`);
      return;
    }
    const prev = this.creds;
    this.creds = next;
    if (!this.o.enabled) return;
    try {
      if (!next) {
        if (this.server.listening) this.o.log.info('peer API stopped: this node left its cluster');
        await this.server.close();
        this.forgetRevocations();
      } else if (!this.server.listening) {
        await this.server.listen(next, this.o.advertiseAddr, this.o.port);
        this.o.log.info({ addr: formatHostPort(this.o.advertiseAddr, this.o.port) }, 'peer API listening (mTLS, cluster CA)');
        this.refreshRevocations(0);
      } else if (prev && (prev.certPem !== next.certPem || prev.keyPem !== next.keyPem || prev.caPem !== next.caPem)) {
        this.server.updateTls(next);
        this.o.log.info('peer API certificate reloaded');
        if (prev.caPem !== next.caPem) this.forgetRevocations(); // another cluster: its list, not the old one
        this.refreshRevocations(0);
      }
      this.report(null);
    } catch (e) {
      this.report(`peer API cannot listen on ${this.o.advertiseAddr}:${this.o.port}: ${toMeshError(e).message}`);
    }
  }

  /** (Re)schedules the next fetch of the revocation list in `delayMs` (0: now); one timer, one fetch at a time. */
  private refreshRevocations(delayMs: number): void {
    if (!this.o.fetchRevocations || this.stopped) return;
    if (this.revTimer) clearTimeout(this.revTimer);
    this.revTimer = setTimeout(() => {
      this.revTimer = undefined;
      this.revFetching ??= this.fetchRevocations().finally(() => (this.revFetching = undefined));
    }, delayMs);
  }

  private async fetchRevocations(): Promise<void> {
    const period = this.o.revocationRefreshMs ?? REVOCATION_REFRESH_MS;
    if (!this.creds) return; // not a member (left): nothing to check against; the next join starts it again
    try {
      const next = parseRevocations(await this.o.fetchRevocations!());
      const added = [...next.nodes].filter((n) => !this.revoked.nodes.has(n));
      this.revoked = next;
      this.revFetchedAt = Date.now();
      this.revFailures = 0;
      if (this.selfRevoked) this.o.log.info('the manager accepts this node\'s certificate again');
      this.selfRevoked = null;
      if (this.revError) this.o.log.info('revocation list fetched again');
      this.revError = null;
      if (added.length) this.o.log.info({ nodes: added, total: next.nodes.size + next.serials.size }, 'peer API: revoked nodes refused from now on');
    } catch (e) {
      const err = toMeshError(e);
      this.revFailures++;
      if (err.code === 'MESHD_CERT_REJECTED' && !this.selfRevoked) {
        this.o.log.warn({ err: err.message }, 'the manager refuses this node\'s certificate (removed from the cluster?): peer requests from this node are refused');
      }
      this.selfRevoked = err.code === 'MESHD_CERT_REJECTED' ? err.message : null;
      if (err.message !== this.revError) this.o.log.warn({ err: err.message, keptEntries: this.revoked.nodes.size + this.revoked.serials.size }, 'revocation list not refreshed; the last one stays in force');
      this.revError = err.message;
    }
    this.refreshRevocations(revocationRetryMs(this.revFailures, period));
  }

  private forgetRevocations(): void {
    this.revoked = EMPTY_REVOKED;
    this.revFetchedAt = null;
    this.selfRevoked = null;
  }

  private report(err: string | null): void {
    if (err && err !== this.lastError) this.o.log.error({ err }, 'peer API not serving');
    if (!err && this.lastError) this.o.log.info('peer API serving again');
    this.lastError = err;
  }

  status(): Record<string, unknown> {
    return {
      node: this.o.nodeName, enabled: this.o.enabled, identity: !!this.creds, serving: this.server.listening,
      addr: formatHostPort(this.o.advertiseAddr, this.o.port), lastError: this.lastError,
      revocations: {
        checked: !!this.o.fetchRevocations, nodes: [...this.revoked.nodes].sort(), serials: this.revoked.serials.size,
        fetchedAt: this.revFetchedAt === null ? null : new Date(this.revFetchedAt).toISOString(),
        refreshMs: this.o.revocationRefreshMs ?? REVOCATION_REFRESH_MS, lastError: this.revError, selfRevoked: this.selfRevoked !== null,
      },
      peers: this.o.members().filter((m) => m.name !== this.o.nodeName).map((m) => ({ name: m.name, addr: formatHostPort(hostOfAddr(m.addr), this.o.port), state: m.state })),
    };
  }

  routes(r: Router): void {
    this.router = r;
    r.add('GET', '/v1/peers', () => ({ json: this.status() }));
    // /v1/peers/NODE/v1/<path> → NODE's /v1/<path> (up to 4 segments, the longest allowlisted route has 4).
    const pats = ['/v1/peers/:node/v1/:a', '/v1/peers/:node/v1/:a/:b', '/v1/peers/:node/v1/:a/:b/:c', '/v1/peers/:node/v1/:a/:b/:c/:d'];
    for (const method of ['GET', 'POST']) {
      for (const p of pats) {
        r.add(method, p, (req) => {
          const segs = ['a', 'b', 'c', 'd'].map((k) => req.params[k]).filter((s): s is string => s !== undefined);
          return this.forward(method, req.params.node!, segs, req.query.toString(), req.body);
        });
      }
    }
  }

  private async forward(method: string, node: string, segs: string[], query: string, body: unknown): Promise<ApiResult> {
    const target = resolvePeer(node, { name: this.o.nodeName, addr: this.o.advertiseAddr }, this.o.members());
    const path = peerPath(segs, query);
    const pathname = path.split('?')[0]!;
    // The same allowlist for this node as for others: `/v1/peers/X/...` means the same for every X.
    if (peerRouteAccess(method, pathname) === null) throw new MeshError('MESHD_FORBIDDEN', `${method} ${pathname} is not served over the peer API (debug views, and exec/logs for managers, only)`);
    if (target.self) {
      const m = this.router!.match(method, pathname);
      if (!m) throw new MeshError('MESHD_UNKNOWN_ROUTE', `no route ${method} ${pathname}`);
      return m.handler({ method, path: pathname, params: m.params, query: new URLSearchParams(query), body });
    }
    if (!this.creds) await this.sync();
    const creds = this.creds;
    if (!creds) throw new MeshError('MESHD_NOT_READY', `${this.o.nodeName} has no cluster identity (not joined): it can ask other nodes only as a member of their cluster`);
    if (this.selfRevoked) throw new MeshError('MESHD_CERT_REJECTED', `${this.o.nodeName}'s certificate is refused by the cluster's managers (${this.selfRevoked}): it may not ask other nodes`, { reason: 'revoked', node: this.o.nodeName });
    const timeout = method === 'POST' ? EXEC_HEADERS_MS : this.o.timeoutMs;
    const res = await peerRequest({ name: target.name, ip: target.ip, port: this.o.port }, creds, method, path, body, timeout);
    const type = String(res.headers['content-type'] ?? '');
    if (type.startsWith('application/json')) {
      const text = await readAll(res, target.name);
      try {
        return { status: res.statusCode ?? 502, json: text.length ? JSON.parse(text) : null };
      } catch {
        return { status: res.statusCode ?? 502, text };
      }
    }
    return { status: res.statusCode ?? 200, stream: relay(res, target.name), contentType: type || 'text/plain; charset=utf-8' };
  }
}

function readAll(res: IncomingMessage, node: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', (e) => reject(new MeshError('MESHD_PEER_UNREACHABLE', `node ${node}: answer broke off: ${e.message}`, { node, reason: 'aborted' })));
  });
}

/**
 * A peer's streamed body (task logs) passed on as it comes. Its error trailer (the stream broke
 * at its source) becomes an error of this stream, so the local socket ends with the same trailer;
 * a peer that goes away mid-stream is MESHD_PEER_UNREACHABLE; the local client leaving stops the peer's stream.
 */
function relay(res: IncomingMessage, node: string): Transform {
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      const t = res.trailers[STREAM_ERROR_TRAILER];
      if (!t) return cb();
      let err: MeshError;
      try {
        err = fromErrorJSON(JSON.parse(t));
      } catch {
        err = new MeshError('MESHD_INTERNAL', `stream from ${node} broke: ${t.slice(0, 200)}`);
      }
      cb(err);
    },
  });
  res.pipe(out);
  const broke = () => out.destroy(new MeshError('MESHD_PEER_UNREACHABLE', `node ${node}: the stream broke off before its end`, { node, reason: 'aborted' }));
  res.once('error', broke);
  res.once('close', () => {
    if (!res.complete) broke();
  });
  out.once('close', () => res.destroy());
  return out;
}
