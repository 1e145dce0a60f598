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
    return new Promise((resolve, reject) => {
      const req = request(
        {
          socketPath: this.opts.socketPath,
          path: `${this.opts.pathPrefix ?? ''}${path}`,
          method,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
          timeout: this.opts.timeoutMs ?? 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new MeshError('MESHD_AGENT_UNREACHABLE', `agent at ${this.opts.socketPath} did not answer in time`)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof MeshError) return reject(e);
        reject(new MeshError('MESHD_AGENT_UNREACHABLE', `cannot reach the agent at ${this.opts.socketPath}: ${e.code ?? e.message}`));
      });
      req.end(payload);
    });
  }
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
