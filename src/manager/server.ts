/**
 * The manager's HTTPS API with mutual TLS. TLS asks every client for a certificate but
 * does not refuse the handshake without one (the two public routes — the CA and join —
 * serve nodes that have none yet); every other route checks the peer certificate itself:
 * signed by this cluster's CA, valid now, not revoked, node still a member, and a role the
 * route allows. Refusals are MESHD_CERT_REJECTED / MESHD_FORBIDDEN, with the JSON error
 * shape of the agent API (reusing its Router and `handle`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MeshError, toMeshError } from '../core/errors.js';
import type { JoinRole } from '../core/tokens/tokens.js';
import { handle, Router, type ApiRequest, type ApiResult, type Handler } from '../adapters/api/server.js';
import type { PeerIdentity } from '../adapters/pki/ca.js';
import { MtlsServer, type TlsMaterial } from '../adapters/api/mtls-server.js';

/** Who may call a route: anyone (no certificate), any node of the cluster, or managers. */
export type Access = 'public' | 'node' | 'manager';

export interface RequestContext {
  /** The verified caller (undefined on public routes called without a certificate). */
  peer: PeerIdentity | undefined;
  remoteAddress: string | undefined;
}

export type ManagerHandler = (req: ApiRequest, ctx: RequestContext) => Promise<ApiResult> | ApiResult;

/** Verifies the DER of a peer certificate (undefined: none presented). */
export type PeerVerifier = (der: Uint8Array | undefined) => Promise<PeerIdentity>;

/**
 * Runs after the caller is authenticated and before the handler: throws to refuse (a
 * follower manager refuses writes this way, naming the leader).
 */
export type RouteGuard = (method: string, pathname: string, access: Access) => Promise<void> | void;

export type { TlsMaterial } from '../adapters/api/mtls-server.js';

export class ManagerApi {
  private readonly router = new Router();
  private readonly access = new WeakMap<Handler, Access>();
  private readonly ctx = new AsyncLocalStorage<RequestContext>();
  /** Clients without a valid certificate still connect (join, CA download are public); each request is checked. */
  private readonly server = new MtlsServer({ what: 'manager API', rejectUnauthorized: false, requestTimeoutMs: 60_000 });
  private guard: RouteGuard | undefined;

  constructor(
    private readonly verify: PeerVerifier,
    private readonly onInternalError: (e: MeshError) => void = () => undefined,
  ) {}

  /** Registers a route; `access` decides who may call it. Routes must be added before listen. */
  route(method: string, pattern: string, access: Access, handler: ManagerHandler): this {
    const h: Handler = (req) => {
      const c = this.ctx.getStore();
      if (!c) throw new MeshError('MESHD_INTERNAL', 'request context missing');
      return handler(req, c);
    };
    this.access.set(h, access);
    this.router.add(method, pattern, h);
    return this;
  }

  /** Sets the guard every matched request passes (one; a later call replaces it). */
  setGuard(g: RouteGuard | undefined): void {
    this.guard = g;
  }

  /** The role check of a route (exported for tests of the table). */
  static allows(access: Access, role: JoinRole | undefined): boolean {
    if (access === 'public') return true;
    if (role === undefined) return false;
    return access === 'node' || role === 'manager';
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sock = req.socket as TLSSocket;
    const remoteAddress = sock.remoteAddress;
    let peer: PeerIdentity | undefined;
    try {
      const url = new URL(req.url ?? '/', 'https://manager');
      checkPathEncoding(url.pathname);
      const m = this.router.match(req.method ?? 'GET', url.pathname);
      const access = m ? this.access.get(m.handler) ?? 'manager' : 'public';
      const raw = sock.getPeerCertificate?.(false)?.raw as Buffer | undefined;
      if (access !== 'public') {
        peer = await this.verify(raw && raw.length ? new Uint8Array(raw) : undefined);
        if (!ManagerApi.allows(access, peer.role)) {
          throw new MeshError('MESHD_FORBIDDEN', `${req.method} ${url.pathname} is for managers; node ${peer.nodeId} is a ${peer.role}`, { nodeId: peer.nodeId, role: peer.role, need: access });
        }
      } else if (raw && raw.length) {
        peer = await this.verify(new Uint8Array(raw)).catch(() => undefined);
      }
      if (m && this.guard) await this.guard(req.method ?? 'GET', url.pathname, access);
    } catch (e) {
      const err = toMeshError(e);
      if (err.kind === 'Internal') this.onInternalError(err);
      const body = JSON.stringify(err.toJSON());
      req.resume();
      res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
      return;
    }
    await this.ctx.run({ peer, remoteAddress }, () => handle(this.router, req, res, this.onInternalError));
  }

  listen(tls: TlsMaterial, host: string, port: number): Promise<{ host: string; port: number }> {
    return this.server.listen(tls, host, port, (req, res) => void this.dispatch(req, res));
  }

  /** Swaps the server certificate (after renewal) for new connections. */
  updateTls(tls: TlsMaterial): void {
    this.server.updateTls(tls);
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/**
 * The shared Router decodes path parameters with decodeURIComponent, which throws a
 * URIError (→ 500) on malformed escapes; refuse those as bad input first.
 */
export function checkPathEncoding(pathname: string): void {
  try {
    decodeURIComponent(pathname);
  } catch {
    throw new MeshError('MESHD_BAD_ARGUMENT', 'request path has a malformed percent-encoding');
  }
}
