/**
 * The agent's control API: HTTP/1.1 + JSON on a unix socket, like dockerd's socket.
 * A tiny router; every error becomes a JSON body {code, kind, message} with the status
 * from the one error table. Bodies are bounded; nothing thrown escapes as a crash.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { MeshError, toMeshError } from '../../core/errors.js';
import { MAX_BODY_BYTES, parseJsonBody } from './json.js';

export interface ApiRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
}
/**
 * `stream`: a body of unknown length sent chunked as it comes (task logs, `-f`); destroyed when
 * the client goes away. An error after the first byte cannot change the status any more: it is
 * sent as the `x-meshd-error` trailer (JSON {code, kind, message}), so the client can still tell a
 * broken stream from a finished one.
 */
export type ApiResult = { status?: number; json?: unknown; text?: string; contentType?: string; stream?: Readable };

/** Trailer that carries the error of a stream that broke after its headers were sent. */
export const STREAM_ERROR_TRAILER = 'x-meshd-error';

function sendStream(res: ServerResponse, status: number, body: Readable, type: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', trailer: STREAM_ERROR_TRAILER });
  res.flushHeaders();
  let done = false;
  const finish = (err?: unknown) => {
    if (done) return;
    done = true;
    // A header value must be visible ASCII: JSON's \u escapes keep it valid JSON.
    if (err !== undefined) res.addTrailers({ [STREAM_ERROR_TRAILER]: JSON.stringify(toMeshError(err).toJSON()).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) });
    res.end();
  };
  body.on('data', (c: Buffer | string) => {
    if (!res.write(c)) body.pause();
  });
  res.on('drain', () => body.resume());
  body.once('end', () => finish());
  body.once('error', (e) => finish(e));
  // Destroyed without an end (the agent stops and closes its follow streams): say so.
  body.once('close', () => finish(new MeshError('MESHD_NOT_READY', 'the stream was closed at its source before its end (agent stopping?)')));
  // The client left (Ctrl-C on `logs -f`): stop the source (docker's follow request, `tail -F`).
  res.once('close', () => {
    done = true;
    body.destroy();
  });
}
export type Handler = (req: ApiRequest) => Promise<ApiResult> | ApiResult;

interface Route {
  method: string;
  parts: string[];
  handler: Handler;
}

export class Router {
  private readonly routes: Route[] = [];
  add(method: string, pattern: string, handler: Handler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
    return this;
  }
  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | undefined {
    const segs = path.split('/').filter(Boolean);
    for (const r of this.routes) {
      if (r.method !== method || r.parts.length !== segs.length) continue;
      const params: Record<string, string> = Object.create(null);
      let ok = true;
      for (let i = 0; i < segs.length; i++) {
        const p = r.parts[i]!;
        const s = segs[i]!;
        if (p.startsWith(':')) {
          try {
            params[p.slice(1)] = decodeURIComponent(s);
          } catch {
            throw new MeshError('MESHD_BAD_ARGUMENT', `bad percent-encoding in path segment ${JSON.stringify(s.slice(0, 64))}`);
          }
        }
        else if (p !== s) {
          ok = false;
          break;
        }
      }
      if (ok) return { handler: r.handler, params };
    }
    return undefined;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      reject(new MeshError('MESHD_BODY_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new MeshError('MESHD_BODY_TOO_LARGE', `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string, type: string): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function handle(router: Router, req: IncomingMessage, res: ServerResponse, onError?: (e: MeshError) => void): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://agent');
    const m = router.match(req.method ?? 'GET', url.pathname);
    if (!m) throw new MeshError('MESHD_UNKNOWN_ROUTE', `no route ${req.method} ${url.pathname}`);
    const raw = await readBody(req);
    const body = raw.length ? parseJsonBody(raw) : undefined;
    const out = await m.handler({ method: req.method ?? 'GET', path: url.pathname, params: m.params, query: url.searchParams, body });
    if (out.stream !== undefined) sendStream(res, out.status ?? 200, out.stream, out.contentType ?? 'text/plain; charset=utf-8');
    else if (out.text !== undefined) send(res, out.status ?? 200, out.text, out.contentType ?? 'text/plain; charset=utf-8');
    else send(res, out.status ?? 200, JSON.stringify(out.json ?? null), 'application/json');
  } catch (e) {
    const err = toMeshError(e);
    if (err.kind === 'Internal') onError?.(err);
    send(res, err.status, JSON.stringify(err.toJSON()), 'application/json');
  }
}

/**
 * How long the control server keeps an idle kept-alive connection, in ms. Node's default (5 s) equals
 * the client pool's own idle timeout (http.globalAgent: 5 s, or 1 s before the server's announced
 * `Keep-Alive: timeout=`), so a client that runs that timer late — any process starved of CPU on a
 * loaded machine — reuses a socket the agent is closing at that instant: EPIPE or ECONNRESET
 * (~2 in 3,000 bench writes at load 30–40). Far beyond the clients' idle timeout, the race needs a
 * client starved for the difference (~60 s); the client also retries that one case (client.ts).
 * Idle connections cost a file descriptor each and belong to live clients (netctl exits; close()
 * drops idle ones at once).
 */
export const API_KEEP_ALIVE_MS = 65_000;

/** Listens on a unix socket path (stale socket files from a crash are replaced; mode 0660). */
export function listenUnix(router: Router, socketPath: string, onError?: (e: MeshError) => void): Promise<Server> {
  mkdirSync(dirname(socketPath), { recursive: true });
  rmSync(socketPath, { force: true });
  const server = createServer((req, res) => void handle(router, req, res, onError));
  server.headersTimeout = 10_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = API_KEEP_ALIVE_MS;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      chmodSync(socketPath, 0o660);
      resolve(server);
    });
  });
}
