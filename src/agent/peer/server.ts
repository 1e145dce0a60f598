/**
 * The peer API's listener: HTTPS with mutual TLS on the node's underlay address. Unlike the
 * manager API (which has public routes for joining nodes), nothing here is public, so TLS itself
 * refuses a client without a certificate of this cluster's CA, or with an expired one: such a
 * client never gets to send a request. A verified caller is then checked per request (policy.ts:
 * allowlisted route, role; revocation when the node knows the list) and the request is served by
 * the agent's own control-API Router — the same handlers netctl reaches on the local socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { MeshError, toMeshError } from '../../core/errors.js';
import { handle, type Router } from '../../adapters/api/server.js';
import { MtlsServer } from '../../adapters/api/mtls-server.js';
import type { Logger } from '../../adapters/logger.js';
import type { PeerCredentials } from './client.js';
import { checkPeerRequest, peerIdentityFromSubject } from './policy.js';

export interface PeerServerOptions {
  /** The agent's control-API router (set once the agent registered its routes). */
  router: () => Router | undefined;
  log: Logger;
  /** Certificates the cluster revoked (node removed), when this node knows them; unset: none known. */
  isRevoked?: (nodeId: string, serial: string) => boolean;
}

export class PeerServer {
  private readonly server: MtlsServer;

  constructor(private readonly o: PeerServerOptions) {
    this.server = new MtlsServer({
      what: 'peer API', rejectUnauthorized: true,
      requestTimeoutMs: 0, // log streams (-f) last as long as the caller wants; idle sockets still time out via headersTimeout
      // A refused handshake (foreign or expired certificate) is the refusal; log it as such, not as a crash.
      onTlsClientError: (e, from) => this.o.log.warn({ from, err: e.message }, 'peer TLS handshake refused'),
      onError: (e) => this.o.log.error({ err: e }, 'peer API server error'),
    });
  }

  get listening(): boolean {
    return this.server.listening;
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sock = req.socket as TLSSocket;
    let router: Router | undefined;
    try {
      // rejectUnauthorized already refused unverified clients during the handshake; checked again
      // so a future change of the TLS options cannot silently open the API.
      if (!sock.authorized) throw new MeshError('MESHD_CERT_REJECTED', `client certificate refused: ${String(sock.authorizationError ?? 'none presented')}`, { reason: 'unverified' });
      const cert = sock.getPeerCertificate(false);
      const caller = peerIdentityFromSubject(cert.subject as { CN?: string; OU?: string });
      if (this.o.isRevoked?.(caller.nodeId, cert.serialNumber ?? '')) {
        throw new MeshError('MESHD_CERT_REJECTED', `certificate of node ${caller.nodeId} has been revoked (node removed)`, { reason: 'revoked', nodeId: caller.nodeId });
      }
      const url = new URL(req.url ?? '/', 'https://peer');
      try {
        decodeURIComponent(url.pathname);
      } catch {
        throw new MeshError('MESHD_BAD_ARGUMENT', 'request path has a malformed percent-encoding');
      }
      const access = checkPeerRequest(req.method ?? 'GET', url.pathname, caller);
      router = this.o.router();
      if (!router) throw new MeshError('MESHD_NOT_READY', 'the agent is starting');
      // Reaching into another node's workloads is worth an audit line (never the command's argv: secrets).
      if (access === 'manager') this.o.log.info({ caller: caller.nodeId, from: sock.remoteAddress, method: req.method, path: url.pathname }, 'peer: serving exec/logs to a manager');
    } catch (e) {
      const err = toMeshError(e);
      this.o.log.warn({ from: sock.remoteAddress, method: req.method, path: req.url?.slice(0, 200), code: err.code, err: err.message }, 'peer request refused');
      const body = JSON.stringify(err.toJSON());
      req.resume();
      res.writeHead(err.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
      res.end(body);
      return;
    }
    await handle(router, req, res, (e) => this.o.log.error({ err: e }, 'peer api internal error'));
  }

  async listen(tls: PeerCredentials, host: string, port: number): Promise<void> {
    await this.server.listen(tls, host, port, (req, res) => void this.dispatch(req, res));
  }

  /** New certificate (renewal) for new connections. */
  updateTls(tls: PeerCredentials): void {
    this.server.updateTls(tls);
  }

  close(): Promise<void> {
    return this.server.close();
  }
}
