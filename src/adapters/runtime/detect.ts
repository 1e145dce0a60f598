/**
 * Which runtimes this node has, for its node description (src/core/spec/runtime.ts): `netns`
 * always (built in); `docker` when the Docker Engine answers `GET /version` on its unix
 * socket, with the engine's version and API version. One plain HTTP request over the
 * socket with a short timeout — no client library: this runs every few seconds so a dockerd
 * started after the agent is picked up, and an absent socket fails at once (ENOENT).
 */
import { request } from 'node:http';
import type { NodeDescription } from '../../core/spec/runtime.js';

/** dockerd's default socket. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
/** Whole request budget (ms): a local engine answers /version in a few ms. */
export const DETECT_TIMEOUT_MS = 1000;
/** Largest /version answer read (bytes); dockerd's is ~1 KiB. */
const MAX_BODY = 64 * 1024;

export interface RuntimeDetection {
  description: NodeDescription;
  /** Why `docker` is not in it (no socket, no answer, unexpected answer); absent when it is. */
  dockerProblem?: string;
}

export interface DetectOptions {
  /** Docker Engine socket; default DEFAULT_DOCKER_SOCKET. */
  socketPath?: string;
  timeoutMs?: number;
}

/** `GET /version` on the socket → `{ version, apiVersion }`; rejects with a short reason. */
export function engineVersion(socketPath: string, timeoutMs: number): Promise<{ version: string; apiVersion: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/version', method: 'GET', headers: { host: 'docker' }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (body.length > MAX_BODY) req.destroy(new Error(`answer larger than ${MAX_BODY} bytes`));
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /version answered ${res.statusCode}`));
        try {
          const v = JSON.parse(body) as { Version?: unknown; ApiVersion?: unknown };
          if (typeof v.Version !== 'string' || typeof v.ApiVersion !== 'string' || !v.Version || !/^\d{1,3}\.\d{1,3}$/.test(v.ApiVersion)) {
            return reject(new Error('GET /version: no Version/ApiVersion in the answer'));
          }
          resolve({ version: v.Version.slice(0, 128), apiVersion: v.ApiVersion });
        } catch {
          reject(new Error('GET /version: answer is not JSON'));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Detects the node's runtimes. Never throws: a missing or broken engine only means no `docker`. */
export async function detectRuntimes(o: DetectOptions = {}): Promise<RuntimeDetection> {
  const socketPath = o.socketPath ?? DEFAULT_DOCKER_SOCKET;
  try {
    const engine = await engineVersion(socketPath, o.timeoutMs ?? DETECT_TIMEOUT_MS);
    return { description: { runtimes: ['netns', 'docker'], engine } };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no socket' : err.code === 'ECONNREFUSED' ? 'nothing listens' : err.message;
    return { description: { runtimes: ['netns'] }, dockerProblem: `docker engine at ${socketPath}: ${why}` };
  }
}
