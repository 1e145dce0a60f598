/**
 * The Docker side of a lab: which engines its agents use and how `lab down` empties them.
 *
 * The docker runtime labels both containers of a task with `meshd.prefix` = the agent's object
 * prefix (`mlab-<lab>-<node>-` in a lab, src/lab/plan.ts), so a lab's containers are found from
 * the label alone — also after the agents were SIGKILLed. A lab node may use its own engine
 * (`docker.socketPath` in its agent config, LabUpOptions.nodeConfig); `lab down` asks every
 * engine the lab's agents were configured with, plus dockerd's default socket.
 */
import { existsSync } from 'node:fs';
import type { Exec } from '../adapters/exec.js';
import { MeshError } from '../core/errors.js';
import { LAB_NS_PREFIX, labOfNamespace } from './plan.js';

export const DEFAULT_ENGINE_SOCKET = '/var/run/docker.sock';

type Section = Record<string, unknown>;
const isSection = (v: unknown): v is Section => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `over` on top of `base`, one level deep: a section present in both (`docker`, `dns`, …) is
 * merged key by key, so a node that sets only `docker.socketPath` keeps the lab's other
 * `docker` keys. Anything else in `over` replaces.
 */
export function mergeAgentConfig(base: Section, over: Section): Section {
  const out: Section = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isSection(b) && isSection(v) ? { ...b, ...v } : v;
  }
  return out;
}

/** Refuses per-node config for a node the lab does not have (it would be silently ignored). */
export function checkNodeConfig(nodeConfig: Record<string, unknown> | undefined, nodes: readonly string[]): void {
  for (const [name, v] of Object.entries(nodeConfig ?? {})) {
    if (!nodes.includes(name)) throw new MeshError('MESHD_BAD_ARGUMENT', `nodeConfig names ${JSON.stringify(name)}, which is not a node of this lab (${nodes.join(', ')})`);
    if (!isSection(v)) throw new MeshError('MESHD_BAD_ARGUMENT', `nodeConfig.${name} must be an object of agent config sections`);
  }
}

/** Every engine socket the lab's agents use (the default one always), without duplicates. */
export function engineSockets(configs: readonly Section[]): string[] {
  const out = new Set<string>([DEFAULT_ENGINE_SOCKET]);
  for (const c of configs) {
    const d = c.docker;
    if (isSection(d) && typeof d.socketPath === 'string' && d.socketPath) out.add(d.socketPath);
  }
  return [...out];
}

/**
 * Container ids from `docker ps -a --format '{{.ID}} {{.Label "meshd.prefix"}} {{.Names}}'` (the
 * name optional) whose prefix label or name belongs to `lab` (`mlab-<lab>-…`; `mlab-ab-` must not
 * match lab `a`, hence the dash). The runtime names every container `<prefix>s-…`/`<prefix>c-…`,
 * so the name finds one whose label is missing or unexpected; an empty label leaves `id name`.
 */
export function labContainerIds(psOutput: string, lab: string): string[] {
  const want = `${LAB_NS_PREFIX}${lab}-`;
  const out: string[] = [];
  for (const line of psOutput.split('\n')) {
    const [id, ...rest] = line.trim().split(/\s+/);
    if (id && rest.some((f) => f.startsWith(want))) out.push(id);
  }
  return out;
}

/** The `docker ps` format both functions below read: id and the runtime's prefix label. */
const PS_ARGS = ['ps', '-a', '--filter', 'label=meshd.prefix', '--format', '{{.ID}} {{.Label "meshd.prefix"}}'];

/** Labs named by `docker ps` lines (PS_ARGS): a container outlives its lab's namespaces and state file. */
export function labsOfContainers(psOutput: string): string[] {
  const out = new Set<string>();
  for (const line of psOutput.split('\n')) {
    const lab = labOfNamespace(line.trim().split(/\s+/)[1] ?? '');
    if (lab) out.add(lab);
  }
  return [...out];
}

/**
 * Labs that still have containers on the default engine (`lab down --all` after a crash that
 * also lost the namespaces and the state file). An engine that does not answer has none.
 */
export async function labsWithContainers(exec: Exec): Promise<string[]> {
  if (!existsSync(DEFAULT_ENGINE_SOCKET)) return [];
  const ps = await exec.run('docker', ['-H', `unix://${DEFAULT_ENGINE_SOCKET}`, ...PS_ARGS], { timeoutMs: 10_000 }).catch(() => undefined);
  return ps?.code === 0 ? labsOfContainers(ps.stdout) : [];
}

/**
 * Removes (SIGKILL + rm, with volumes) every container of `lab` on each engine, found by label or
 * name (one pass: src/lab/engine-requests.ts repeats it until none is found). An engine that
 * does not answer is skipped (no socket: nothing can run there); one that answers but fails
 * the removal is an error, so `lab down` never reports a clean teardown it did not do.
 * Returns how many containers were removed.
 */
export async function removeLabContainers(exec: Exec, lab: string, sockets: readonly string[]): Promise<number> {
  let removed = 0;
  const problems: string[] = [];
  for (const sock of sockets) {
    if (!existsSync(sock)) continue;
    const host = ['-H', `unix://${sock}`];
    // Every container of the engine, unfiltered: label and name are judged here, in one docker call.
    const ps = await exec.run('docker', [...host, 'ps', '-a', '--format', '{{.ID}} {{.Label "meshd.prefix"}} {{.Names}}'], { timeoutMs: 10_000 }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
    if (ps.code !== 0) continue; // a stale socket of a stopped engine
    const ids = labContainerIds(ps.stdout, lab);
    if (!ids.length) continue;
    const rm = await exec.run('docker', [...host, 'rm', '-f', '-v', ...ids], { timeoutMs: 60_000 });
    if (rm.code !== 0) problems.push(`${sock}: docker rm -f: ${rm.stderr.trim().slice(0, 300)}`);
    else removed += ids.length;
  }
  if (problems.length) throw new MeshError('MESHD_EXEC_FAILED', `could not remove containers of lab ${lab}: ${problems.join('; ')}`);
  return removed;
}
