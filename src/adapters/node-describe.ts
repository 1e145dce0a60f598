/**
 * This node's full description for the manager (swarm's NodeDescription): the runtimes
 * (src/adapters/runtime/detect.ts), plus what the scheduler and constraints need that the
 * runtime detection does not carry — the host's CPUs and memory (`os.cpus()`,
 * `os.totalmem()`: what the agent's host has; in a lab every node reports the same host),
 * its platform in docker's words (`linux`, `x86_64` as uname -m says), and the Docker
 * Engine's labels (`GET /info` Labels, `k=v` strings) for `engine.labels.*` constraints.
 *
 * The labels cost one more local request, only when the engine answered `/version`; a failure
 * to read them is reported as a problem (logged by the caller) and the node is described
 * without labels — the engine runs, so the docker runtime stays.
 */
import { request } from 'node:http';
import { arch, cpus, platform, totalmem } from 'node:os';
import type { Platform, Resources } from '../core/spec/types.js';
import { DEFAULT_DOCKER_SOCKET, DETECT_TIMEOUT_MS, detectRuntimes, type DetectOptions, type RuntimeDetection } from './runtime/detect.js';

/** Largest `/info` answer read (bytes); dockerd's is a few KiB. */
const MAX_INFO = 512 * 1024;

/** Node's arch names → docker's (uname -m). */
const ARCH: Readonly<Record<string, string>> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ia32: 'i386', ppc64: 'ppc64le', s390x: 's390x' };

/** The host's platform in docker's words. */
export function hostPlatform(): Platform {
  return { os: platform(), arch: ARCH[arch()] ?? arch() };
}

/** The host's schedulable resources: every CPU (milli-CPUs) and all memory (bytes). */
export function hostResources(): Resources {
  return { cpuMilli: Math.max(1, cpus().length) * 1000, memoryBytes: totalmem() };
}

/** `["k=v", "flag"]` → `{ k: 'v', flag: '' }` (docker's engine label form); later keys win. */
export function parseEngineLabels(list: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!Array.isArray(list)) return out;
  for (const item of list.slice(0, 256)) {
    if (typeof item !== 'string' || !item) continue;
    const i = item.indexOf('=');
    const k = (i < 0 ? item : item.slice(0, i)).slice(0, 256);
    if (k && k !== '__proto__' && k !== 'constructor' && k !== 'prototype') out[k] = i < 0 ? '' : item.slice(i + 1, i + 1 + 1024);
  }
  return out;
}

/** `GET /info` on the engine socket → its Labels. */
export function engineLabels(socketPath: string, timeoutMs: number): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/info', method: 'GET', headers: { host: 'docker' }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
        if (body.length > MAX_INFO) req.destroy(new Error(`answer larger than ${MAX_INFO} bytes`));
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET /info answered ${res.statusCode}`));
        try {
          resolve(parseEngineLabels((JSON.parse(body) as { Labels?: unknown }).Labels));
        } catch {
          reject(new Error('GET /info: answer is not JSON'));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Describes the node. Never throws (as detectRuntimes): problems go into `dockerProblem`. */
export async function describeNode(o: DetectOptions = {}): Promise<RuntimeDetection> {
  const d = await detectRuntimes(o);
  const description = { ...d.description, resources: hostResources(), platform: hostPlatform() };
  if (!description.engine) return { ...d, description };
  try {
    const labels = await engineLabels(o.socketPath ?? DEFAULT_DOCKER_SOCKET, o.timeoutMs ?? DETECT_TIMEOUT_MS);
    return { description: { ...description, engine: { ...description.engine, labels } } };
  } catch (e) {
    return { description, dockerProblem: `engine labels unreadable: ${(e as Error).message}` };
  }
}
