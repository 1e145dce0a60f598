/**
 * Client for the agent's control API over a unix socket (`-H unix://PATH`).
 * Error bodies become MeshErrors with the agent's code; a dead socket is MESHD_AGENT_UNREACHABLE.
 */
import { request, type IncomingMessage } from 'node:http';
import { MeshError, fromErrorJSON } from '../../core/errors.js';

export interface ApiClientOptions {
  socketPath: string;
  timeoutMs?: number;
  /**
   * Prepended to every path: `/v1/peers/NODE` makes this a client of another node's agent, asked
   * through the local one (its peer API, src/agent/peer), with the same paths as a local client.
   */
  pathPrefix?: string;
}

export function parseHost(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new MeshError('MESHD_BAD_ARGUMENT', `unsupported host ${JSON.stringify(host)}: use unix:///path/to.sock`);
}

export class ApiClient {
  constructor(private readonly opts: ApiClientOptions) {}

  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.raw(method, path, body);
    if (r.status >= 400) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(r.body);
      } catch {
        parsed = { message: r.body };
      }
      throw fromErrorJSON(parsed);
    }
    return (r.body.length ? JSON.parse(r.body) : undefined) as T;
  }

  async text(path: string): Promise<string> {
    const r = await this.raw('GET', path);
    if (r.status >= 400) throw fromErrorJSON(JSON.parse(r.body));
    return r.body;
  }

  /**
   * GET of a streamed body (task logs): resolves with the response once its headers say 2xx
   * (an error status is read whole and thrown as the agent's MeshError). No idle timeout after
   * the headers: a followed log may stay quiet for hours; `timeoutMs` bounds only the wait for
   * the headers. A stream the agent broke after its headers ends with the `x-meshd-error`
   * trailer: see streamError().
   */
  stream(path: string): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.opts.socketPath, path: `${this.opts.pathPrefix ?? ''}${path}`, method: 'GET' }, (res) => {
        clearTimeout(timer);
        if ((res.statusCode ?? 0) < 400) return resolve(res);
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = { message: text };
          }
          reject(fromErrorJSON(parsed));
        });
        res.on('error', reject);
      });
      const timer = setTimeout(() => req.destroy(new MeshError('MESHD_AGENT_UNREACHABLE', `agent at ${this.opts.socketPath} did not answer in time`)), this.opts.timeoutMs ?? 15_000);
      req.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e instanceof MeshError) return reject(e);
        reject(new MeshError('MESHD_AGENT_UNREACHABLE', `cannot reach the agent at ${this.opts.socketPath}: ${e.code ?? e.message}`));
      });
      req.end();
    });
  }

  raw(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return this.once(method, path, payload, false).catch((e: unknown) => {
      if (!isStaleKeepAlive(e)) throw e;
      return this.once(method, path, payload, true);
    });
  }

  /** One request; a failure on a reused kept-alive socket before any response rejects with a StaleKeepAlive (raw() retries it). */
  private once(method: string, path: string, payload: string | undefined, fresh: boolean): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      let answered = false;
      const req = request(
        {
          socketPath: this.opts.socketPath,
          path: `${this.opts.pathPrefix ?? ''}${path}`,
          method,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
          timeout: this.opts.timeoutMs ?? 15_000,
          // the retry: a connection of its own, never another pooled one that may be stale too
          ...(fresh ? { agent: false } : {}),
        },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new MeshError('MESHD_AGENT_UNREACHABLE', `agent at ${this.opts.socketPath} did not answer in time`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof MeshError) return reject(e);
        if (req.reusedSocket && !answered && RESET_CODES.has(e.code ?? '')) return reject(new StaleKeepAlive(e));
        reject(new MeshError('MESHD_AGENT_UNREACHABLE', `cannot reach the agent at ${this.opts.socketPath}: ${e.code ?? e.message}`));
      });
      req.end(payload);
    });
  }
}

/**
 * Errors of a kept-alive socket the agent had closed while it sat idle in the client's pool: the
 * request was written into (or onto) a connection the server no longer reads, so it never reached
 * a handler. Node's pool drops an idle socket 1 s before the server's announced keep-alive timeout,
 * but a client process starved of CPU (load 30–40 on 2 cores) runs that timer late and reuses the
 * socket as the server closes it: EPIPE when the close came first, ECONNRESET when the request was
 * already queued unread (the kernel resets a unix socket closed with unread data). Node's own docs
 * prescribe one retry on a fresh connection for exactly this case (`request.reusedSocket`).
 */
const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE']);

class StaleKeepAlive extends Error {
  constructor(override readonly cause: NodeJS.ErrnoException) {
    super(`kept-alive connection closed by the agent: ${cause.code}`);
  }
}

/**
 * Retried once, on a connection of its own (outside the pool, which may hold more stale sockets).
 * Safe for every method: the agent's server answers every request it has read (errors included,
 * server.ts handle()) and closes a kept-alive connection only while no request is on it, so a request
 * failed this way was not acted on — unless the agent died while handling it, and then the retry
 * meets no agent (MESHD_AGENT_UNREACHABLE) or its next incarnation. The retry's own failure is the
 * caller's error, as any first failure on a fresh connection is.
 */
function isStaleKeepAlive(e: unknown): e is StaleKeepAlive {
  return e instanceof StaleKeepAlive;
}

/** The error a streamed response ended with (its `x-meshd-error` trailer), once it ended; null when it finished cleanly. */
export function streamError(res: IncomingMessage): MeshError | null {
  const t = res.trailers['x-meshd-error'];
  if (!t) return null;
  try {
    return fromErrorJSON(JSON.parse(t));
  } catch {
    return new MeshError('MESHD_INTERNAL', `stream broke: ${t.slice(0, 200)}`);
  }
}
