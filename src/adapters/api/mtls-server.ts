/**
 * One HTTPS server that asks every client for a certificate from the cluster CA: the manager's API
 * (port 2377) and the agents' peer API (2378) both run on it. The owner decides what a verified
 * (or, with `rejectUnauthorized: false`, an unverified) client may do; this only holds the socket:
 * listen, swap the certificate after a renewal (new connections get it; open ones keep theirs),
 * close without waiting for idle keep-alive or streaming connections.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../../core/errors.js';

/** PEM material: the cluster CA, this node's certificate and key. */
export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface MtlsServerOptions {
  /** Refuse a client without a valid certificate in the handshake (else the owner checks it per request). */
  rejectUnauthorized: boolean;
  /** Bound on a whole request (0: none, for streamed responses such as `logs -f`). Headers are bounded at 10 s. */
  requestTimeoutMs: number;
  /** What the server is, for errors ("manager API"). */
  what: string;
  /** A refused handshake (foreign or expired certificate): the refusal itself, reported, not a crash. */
  onTlsClientError?: (err: Error, remoteAddress: string | undefined) => void;
  /** A server error after it listens. */
  onError?: (err: Error) => void;
}

export class MtlsServer {
  private server: Server | undefined;
  private bound = false;

  constructor(private readonly o: MtlsServerOptions) {}

  get listening(): boolean {
    return this.bound;
  }

  /** Listens on host:port (0: any free port) and answers with `handler`; resolves with the bound address. */
  listen(tls: TlsMaterial, host: string, port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ host: string; port: number }> {
    if (this.server) throw new MeshError('MESHD_INTERNAL', `${this.o.what} already listening`);
    const server = createServer({
      key: tls.keyPem, cert: tls.certPem, ca: [tls.caPem],
      requestCert: true, rejectUnauthorized: this.o.rejectUnauthorized, minVersion: 'TLSv1.2',
    }, handler);
    server.headersTimeout = 10_000;
    server.requestTimeout = this.o.requestTimeoutMs;
    const onTls = this.o.onTlsClientError;
    if (onTls) server.on('tlsClientError', (e, s) => onTls(e, s.remoteAddress));
    this.server = server; // set before listening: a close() during listen() closes it
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const onError = this.o.onError;
        if (onError) server.on('error', onError);
        this.bound = true;
        const a = server.address();
        resolve({ host, port: typeof a === 'object' && a ? a.port : port });
      });
    });
  }

  /** New certificate (after renewal) for new connections. */
  updateTls(tls: TlsMaterial): void {
    this.server?.setSecureContext({ key: tls.keyPem, cert: tls.certPem, ca: [tls.caPem] });
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.bound = false;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}
