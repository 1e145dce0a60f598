/**
 * Lab lifecycle on one machine: namespaces as hosts, a switch namespace as the underlay,
 * one meshd per host. Everything it makes is named by src/lab/plan.ts so `down` can find
 * it from the names alone, even when the state file is gone or the agents were SIGKILLed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MeshError } from '../core/errors.js';
import type { Exec } from '../adapters/exec.js';
import { ApiClient } from '../adapters/api/client.js';
import { writeFileAtomic } from '../adapters/fs/atomic.js';
import { checkNodeConfig, engineSockets, labsWithContainers, mergeAgentConfig } from './containers.js';
import { stopAgents, sweepLabContainers, type LabDownResult } from './engine-requests.js';
import {
  hostResolvConf, nodeObjectPrefix,
  CLIENT_ADDR, clientNs, hostNs, labOfNamespace, labRunDir, LAB_NS_PREFIX, planLab, renderCreateNamespaces,
  renderHost, renderSwitch, switchNs, underlayHosts, validateLabName, type LabNodePlan,
  CLIENT_ADDR6, nodeAddr, nodeAddr6, renderHostUnderlay, type LabUnderlay,
} from './plan.js';

export interface LabNodeState extends LabNodePlan {
  pid: number | null;
  log: string;
  config: string;
}
export interface LabState {
  name: string;
  createdAt: string;
  switchNs: string;
  client: { netns: string; underlay: string };
  nodes: LabNodeState[];
  gossipPreset: string;
  /** Base64 AES-256 gossip key file shared by the lab's agents (0600), or null when unencrypted. */
  keyFile: string | null;
  /** Extra agent config for every node (LabUpOptions.agentConfig); absent in older state files. */
  agentConfig?: Record<string, unknown>;
  /** Per-node agent config over agentConfig (LabUpOptions.nodeConfig); absent in older state files. */
  nodeConfig?: Record<string, Record<string, unknown>>;
  /** The meshd the agents run (LabUpOptions.meshd); absent: this checkout's (meshdCommand). */
  meshd?: string;
  /** The underlay's families (LabUpOptions.underlay); absent in older state files: ipv4. */
  underlay?: LabUnderlay;
}

/**
 * This checkout's daemon: dist/src/bin/meshd.js, the esbuild bundle after `npm run build` (tsc's
 * own output after a bare `tsc`). The same path from the unbundled dist/src/lab/lab.js and from
 * the bundles and their chunks, which all sit in dist/src/bin.
 */
export const MESHD_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'meshd.js');

/**
 * argv that starts a meshd: a `.js` file runs under this Node; anything else is an executable
 * (an installed `meshd` on PATH, `npm install -g`) and runs as it is, shebang and all.
 */
export function meshdCommand(bin: string = MESHD_BIN): string[] {
  return bin.endsWith('.js') ? [process.execPath, bin] : [bin];
}
const stateFile = (lab: string): string => join(labRunDir(lab), 'lab.json');

export async function listNamespaces(exec: Exec): Promise<string[]> {
  const out = await exec.check('ip', ['netns', 'list']);
  return out.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter(Boolean);
}

export function readState(lab: string): LabState | undefined {
  const f = stateFile(validateLabName(lab));
  if (!existsSync(f)) return undefined;
  try {
    const s = JSON.parse(readFileSync(f, 'utf8')) as LabState;
    for (const n of s.nodes) n.pid = readPidFile(s.name, n.name) ?? n.pid;
    return s;
  } catch {
    return undefined; // a torn state file must not stop `down`; names are enough to clean up
  }
}

/**
 * Each agent's pid lives in its own file, written by whoever started it: `lab start` of
 * several nodes at once (a test restarting every agent together) would otherwise race on
 * the shared state file, and the last writer would erase the others' pids.
 */
function pidFile(lab: string, node: string): string {
  return join(labRunDir(lab), `${node}.pid`);
}

function readPidFile(lab: string, node: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(lab, node), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function writeState(s: LabState): void {
  mkdirSync(labRunDir(s.name), { recursive: true });
  // Atomic: readers never see half a file. 0644: names, addresses, pids and the key file's PATH
  // (never a key), read by anyone listing labs.
  writeFileAtomic(stateFile(s.name), JSON.stringify(s, null, 2), 0o644);
}

export function requireState(lab: string): LabState {
  const s = readState(lab);
  if (!s) throw new MeshError('MESHD_LAB_NOT_FOUND', `no lab named ${lab} (see: netctl lab ls)`);
  return s;
}

/**
 * Whether `pid` is a running meshd. A zombie (an agent we spawned that died and nobody reaped)
 * is dead. The command line guards against pid reuse; it is empty for a moment while the
 * process is inside execve (nsenter becoming node), which counts as alive — CI once read that
 * window and called a starting agent dead.
 */
function alive(pid: number | null): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X' || state === 'x') return false;
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd === '' || cmd.includes('meshd');
  } catch {
    return false;
  }
}

export interface LabUpOptions {
  name: string;
  nodes: number;
  gossipPreset?: 'lan' | 'wan' | 'local';
  /** Encrypt gossip with a fresh per-lab key (default true). */
  encrypt?: boolean;
  logLevel?: string;
  readyTimeoutMs?: number;
  onProgress?: (msg: string) => void;
  /**
   * Extra agent config merged into every node's config file (validated by the agent's schema at start),
   * e.g. `{ dns: { workers: 1 } }`; `gossip` is merged into the lab's gossip section (preset, seeds and
   * key stay the lab's). Kept in the lab state, so `lab start` after a kill uses it too.
   */
  agentConfig?: Record<string, unknown>;
  /**
   * Agent config for single nodes, merged over agentConfig section by section (mergeAgentConfig),
   * e.g. `{ n3: { docker: { socketPath: '/run/meshd-lab/x/n3-docker/docker.sock' } } }` for a node
   * with its own Docker engine. Kept in the lab state; `lab down` removes the lab's containers
   * from every engine named here.
   */
  nodeConfig?: Record<string, Record<string, unknown>>;
  /**
   * The meshd to run (`lab up --meshd PATH`, else $MESHD_BIN, else this checkout's): e.g. an installed
   * package's bin/meshd. Kept in the lab state, so `lab start` after a kill runs the same one.
   */
  meshd?: string;
  /** Underlay address families (plan.ts LabUnderlay): `ipv6` = an IPv6-only underlay. Default ipv4. */
  underlay?: LabUnderlay;
}

export async function labUp(exec: Exec, opts: LabUpOptions): Promise<LabState> {
  const lab = validateLabName(opts.name);
  const underlay = opts.underlay ?? 'ipv4';
  const plan = planLab(lab, opts.nodes, underlay);
  checkNodeConfig(opts.nodeConfig, plan.map((n) => n.name));
  const existing = (await listNamespaces(exec)).filter((ns) => labOfNamespace(ns) === lab);
  if (existing.length || readState(lab)) {
    throw new MeshError('MESHD_LAB_EXISTS', `lab ${lab} already exists (netctl lab down --name ${lab})`);
  }
  const progress = opts.onProgress ?? (() => undefined);
  const meshd = opts.meshd ?? (process.env.MESHD_BIN || undefined);
  if (meshd !== undefined && !existsSync(meshd)) throw new MeshError('MESHD_BAD_ARGUMENT', `no meshd at ${meshd} (--meshd / $MESHD_BIN)`);
  try {
    progress(`creating ${plan.length} host namespaces, a switch and a client`);
    await exec.check('ip', ['-batch', '-'], { input: renderCreateNamespaces(lab, plan) });
    await exec.check('ip', ['-n', switchNs(lab), '-batch', '-'], { input: renderSwitch(plan) });
    await addUnderlayAddresses(exec, lab, plan, underlay);
    const state: LabState = {
      name: lab,
      createdAt: new Date().toISOString(),
      switchNs: switchNs(lab),
      client: { netns: clientNs(lab), underlay: underlay === 'ipv6' ? CLIENT_ADDR6 : CLIENT_ADDR },
      nodes: plan.map((n) => ({ ...n, pid: null, log: join(labRunDir(lab), `${n.name}.log`), config: join(labRunDir(lab), `${n.name}.json`) })),
      gossipPreset: opts.gossipPreset ?? 'local',
      keyFile: opts.encrypt === false ? null : join(labRunDir(lab), 'gossip.key'),
      ...(opts.agentConfig ? { agentConfig: opts.agentConfig } : {}),
      ...(opts.nodeConfig ? { nodeConfig: opts.nodeConfig } : {}),
      ...(meshd ? { meshd } : {}),
      ...(underlay !== 'ipv4' ? { underlay } : {}),
    };
    mkdirSync(labRunDir(lab), { recursive: true });
    if (state.keyFile) writeFileAtomic(state.keyFile, randomBytes(32).toString('base64') + '\n', 0o600); // the lab's gossip key
    writeState(state);
    progress(`starting ${plan.length} agents`);
    for (const n of state.nodes) n.pid = startAgentProcess(state, n, opts.logLevel ?? 'info');
    writeState(state);
    await Promise.all(state.nodes.map((n) => waitReady(n, opts.readyTimeoutMs ?? 30_000)));
    progress(`lab ${lab} is up`);
    return state;
  } catch (e) {
    await labDown(exec, lab).catch(() => undefined);
    throw e;
  }
}

/**
 * Underlay addresses on the client and every host: IPv4 (as always), IPv6 only, or both
 * (LabUpOptions.underlay). On its own so other lab options that add addresses merge beside it.
 */
async function addUnderlayAddresses(exec: Exec, lab: string, plan: readonly LabNodePlan[], underlay: LabUnderlay): Promise<void> {
  if (underlay === 'ipv4') {
    // Permanent neighbours between all hosts (see renderHost): a 64-node lab adds no ARP entries.
    const hosts = underlayHosts(plan);
    await exec.check('ip', ['-n', clientNs(lab), '-batch', '-'], { input: renderHost(hosts[0]!, hosts) });
    await Promise.all(plan.map((n) => exec.check('ip', ['-n', n.netns, '-batch', '-'], { input: renderHost(hosts[n.index]!, hosts) })));
    return;
  }
  await exec.check('ip', ['-n', clientNs(lab), '-batch', '-'], { input: renderHostUnderlay(underlay, CLIENT_ADDR, CLIENT_ADDR6) });
  await Promise.all(plan.map((n) => exec.check('ip', ['-n', n.netns, '-batch', '-'], { input: renderHostUnderlay(underlay, nodeAddr(n.index), nodeAddr6(n.index)) })));
}

/** The extra agent config of one node: the lab's, then the node's own on top. */
function extraConfig(state: LabState, node: string): Record<string, unknown> {
  return mergeAgentConfig(state.agentConfig ?? {}, state.nodeConfig?.[node] ?? {});
}

function startAgentProcess(state: LabState, n: LabNodeState, logLevel: string): number {
  mkdirSync(join(labRunDir(state.name), n.name, 'data'), { recursive: true });
  const extra = extraConfig(state, n.name);
  const extraGossip = typeof extra.gossip === 'object' && extra.gossip !== null ? (extra.gossip as Record<string, unknown>) : {};
  const extraDns = typeof extra.dns === 'object' && extra.dns !== null ? (extra.dns as Record<string, unknown>) : {};
  const config = {
    ...extra,
    // Lab agents share one machine's CPUs: extra DNS worker processes per agent (the per-node
    // default on a real host) only add processes and wakeups here. A lab may still ask for more.
    dns: { workers: 1, resolvConf: hostResolvConf(state.name, n.name), ...extraDns },
    objectPrefix: nodeObjectPrefix(state.name, n.name),
    nodeName: n.name,
    advertiseAddr: n.underlay,
    controlSocket: n.socket,
    dataDir: join(labRunDir(state.name), n.name, 'data'),
    logLevel,
    lab: state.name,
    gossip: { ...extraGossip, preset: state.gossipPreset, seeds: n.seeds, ...(state.keyFile ? { keyFile: state.keyFile } : {}) },
  };
  writeFileSync(n.config, JSON.stringify(config, null, 2));
  const fd = openSync(n.log, 'a');
  // nsenter --net, not `ip netns exec`: the latter gives the agent a private mount namespace
  // (slave propagation), so namespaces the agent creates (sandboxes, tasks) would be invisible
  // to everyone else — to netctl exec, to lab down, and to the agent's own next incarnation.
  const child = spawn('nsenter', [`--net=/run/netns/${n.netns}`, '--', ...meshdCommand(state.meshd), '--config', n.config], {
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  child.unref();
  if (!child.pid) throw new MeshError('MESHD_EXEC_FAILED', `could not start meshd for ${n.name}`);
  writeFileAtomic(pidFile(state.name, n.name), `${child.pid}\n`, 0o644); // a pid file is public, as /run/*.pid
  return child.pid;
}

async function waitReady(n: LabNodeState, timeoutMs: number): Promise<void> {
  const client = new ApiClient({ socketPath: n.socket, timeoutMs: 2000 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const h = await client.call<{ ready: boolean }>('GET', '/v1/health');
      if (h.ready) return;
    } catch {
      /* not up yet */
    }
    if (!alive(n.pid)) {
      const tail = existsSync(n.log) ? readFileSync(n.log, 'utf8').split('\n').slice(-5).join('\n') : '';
      throw new MeshError('MESHD_NOT_READY', `agent ${n.name} exited during start: ${tail}`);
    }
    if (Date.now() > deadline) throw new MeshError('MESHD_NOT_READY', `agent ${n.name} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts (or restarts after a kill) one node's agent and waits until it is ready. */
export async function labStartAgent(lab: string, node: string, logLevel = 'info'): Promise<LabNodeState> {
  const state = requireState(lab);
  const n = state.nodes.find((x) => x.name === node);
  if (!n) throw new MeshError('MESHD_NODE_NOT_FOUND', `lab ${lab} has no node ${node}`);
  if (alive(n.pid)) throw new MeshError('MESHD_BAD_ARGUMENT', `agent ${node} is already running (pid ${n.pid})`);
  n.pid = startAgentProcess(state, n, logLevel);
  await waitReady(n, 30_000);
  return n;
}

/** Signals one node's agent (SIGKILL, SIGSTOP, SIGCONT, SIGTERM) — fault injection for tests. */
export function labSignalAgent(lab: string, node: string, signal: NodeJS.Signals): number {
  const state = requireState(lab);
  const n = state.nodes.find((x) => x.name === node);
  if (!n) throw new MeshError('MESHD_NODE_NOT_FOUND', `lab ${lab} has no node ${node}`);
  if (!alive(n.pid)) throw new MeshError('MESHD_NOT_FOUND', `agent ${node} is not running`);
  process.kill(n.pid!, signal);
  return n.pid!;
}

/**
 * Removes every process, container, namespace (and with it every link and nft table) and file of a lab.
 * Order: agents first (none may start a task while we remove it; stopAgents also waits for them to be
 * dead and for the engine requests they had sent), then the lab's containers on every engine its
 * agents used (containers.ts, swept until a listing is empty), then whatever else runs in the lab's
 * namespaces, then the namespaces.
 */
export async function labDown(exec: Exec, lab: string): Promise<LabDownResult> {
  validateLabName(lab);
  const state = readState(lab);
  let processes = 0;
  const kill = (pid: number): void => {
    if (pid === process.pid) return;
    try {
      process.kill(pid, 'SIGKILL');
      processes++;
    } catch {
      /* already gone */
    }
  };
  const sockets = engineSockets((state?.nodes ?? []).map((n) => extraConfig(state!, n.name)));
  // Agents: those of the state file AND every meshd in the lab's namespaces — one started by
  // other means (a test's restartAgentsInRootMounts) is not in the state file and was killed only
  // after the sweep, while it re-created a container (a clean clone left mlab-itwd-n2-s-…, Created).
  const inLab = await namespacePids(exec, (await listNamespaces(exec)).filter((ns) => labOfNamespace(ns) === lab));
  const agentPids = new Set([...(state?.nodes ?? []).map((n) => n.pid), ...inLab].filter((p): p is number => alive(p)));
  // The agents are dead, and every Docker request they had sent is finished, before the lab's
  // containers are listed (engine-requests.ts: dockerd finishes a create after its client died).
  const agents = await stopAgents(exec, [...agentPids], sockets);
  processes += agents.killed;
  // A refused removal must not stop the rest of the teardown; it is reported at the end, and the
  // state file (which names the node engines) is kept so a second `lab down` can retry.
  let containers = 0;
  let containerError: unknown;
  try {
    containers = (await sweepLabContainers(exec, lab, sockets)).removed;
  } catch (e) {
    containerError = e;
  }
  if (agents.problems.length && !containerError) containerError = new MeshError('MESHD_EXEC_FAILED', `lab ${lab}: stopping the agents: ${agents.problems.join('; ')}`);
  const nss = (await listNamespaces(exec)).filter((ns) => labOfNamespace(ns) === lab);
  for (const pid of await namespacePids(exec, nss)) kill(pid);
  if (nss.length) {
    // deleting a namespace deletes its links and nft tables with it
    await exec.run('ip', ['-force', '-batch', '-'], { input: nss.map((ns) => `netns del ${ns}`).join('\n') + '\n' });
  }
  // A node's secret tmpfs (<data>/task-files) outlives an agent that was killed: unmount before removing.
  for (const mp of mountsUnder(labRunDir(lab))) await exec.run('umount', ['-l', mp]);
  if (!containerError) rmSync(labRunDir(lab), { recursive: true, force: true });
  // per-namespace /etc files (task resolv.conf) that `ip netns exec` bind-mounts
  for (const d of existsSync('/etc/netns') ? readdirSync('/etc/netns') : []) if (labOfNamespace(d) === lab) rmSync(join('/etc/netns', d), { recursive: true, force: true });
  const left = (await listNamespaces(exec)).filter((ns) => labOfNamespace(ns) === lab);
  if (left.length) throw new MeshError('MESHD_EXEC_FAILED', `could not remove namespaces: ${left.join(', ')}`);
  if (containerError) throw containerError;
  return { namespaces: nss.length, processes, containers, agents };
}

/** Every process in `nss` (one `ip -batch`: only the union is needed, so the outputs may run together). */
async function namespacePids(exec: Exec, nss: readonly string[]): Promise<number[]> {
  if (!nss.length) return [];
  const r = await exec.run('ip', ['-force', '-batch', '-'], { input: nss.map((ns) => `netns pids ${ns}`).join('\n') + '\n' });
  return [...new Set(r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((p) => Number.isInteger(p) && p > 0))];
}

export function knownLabs(): string[] {
  const dir = '/run/meshd';
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((d) => existsSync(join(dir, d, 'lab.json')));
}

export async function labDownAll(exec: Exec): Promise<string[]> {
  const labs = new Set<string>(knownLabs());
  for (const ns of await listNamespaces(exec)) {
    const l = labOfNamespace(ns);
    if (l) labs.add(l);
  }
  for (const l of await labsWithContainers(exec)) labs.add(l);
  for (const l of labs) await labDown(exec, l);
  return [...labs];
}

export interface LabSummary {
  name: string;
  nodes: Array<{ name: string; netns: string; underlay: string; socket: string; pid: number | null; running: boolean }>;
  namespaces: number;
  stale: boolean;
}

export async function labList(exec: Exec): Promise<LabSummary[]> {
  const nss = await listNamespaces(exec);
  const labs = new Set<string>(knownLabs());
  for (const ns of nss) {
    const l = labOfNamespace(ns);
    if (l) labs.add(l);
  }
  return [...labs].sort().map((name) => {
    const s = readState(name);
    const nodes = (s?.nodes ?? []).map((n) => ({ name: n.name, netns: n.netns, underlay: n.underlay, socket: n.socket, pid: n.pid, running: alive(n.pid) }));
    return { name, nodes, namespaces: nss.filter((ns) => labOfNamespace(ns) === name).length, stale: !s };
  });
}

export function labNodeNs(lab: string, node: string): string {
  const s = requireState(lab);
  if (node === 'client') return s.client.netns;
  const n = s.nodes.find((x) => x.name === node);
  if (!n) throw new MeshError('MESHD_NODE_NOT_FOUND', `lab ${lab} has no node ${node}`);
  return hostNs(lab, node);
}

/** Runs argv inside a lab namespace with the terminal attached; returns its exit code. */
export function labRun(netns: string, argv: string[]): number {
  if (!argv.length) throw new MeshError('MESHD_BAD_ARGUMENT', 'no command given (use: -- CMD ARGS...)');
  const r = spawnSync('ip', ['netns', 'exec', netns, ...argv], { stdio: 'inherit' });
  if (r.error) throw new MeshError('MESHD_EXEC_FAILED', `${argv[0]}: ${r.error.message}`);
  return r.status ?? 128;
}

export { LAB_NS_PREFIX };

/** Mount points under `dir` (deepest first), from /proc/self/mounts (octal escapes decoded). */
function mountsUnder(dir: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mounts', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').map((l) => unescape(l.split(' ')[1] ?? '')).filter((mp) => mp.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}
