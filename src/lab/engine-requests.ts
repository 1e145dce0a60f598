/**
 * Stopping a lab's agents so that `lab down` finds every container they made — also one whose
 * `docker create` was still running inside dockerd when the agent died.
 *
 * Why: dockerd (20.10, vfs) finishes a create after its client is gone — the handler does not
 * watch the connection, and a vfs create copies the image's rootfs (seconds under load). A clean
 * clone once left `mlab-itwd-n2-s-…` (state Created): it was registered after the agents were
 * SIGKILLed and after `lab down` had listed the lab's containers.
 *
 * The barrier, without a guessed sleep: dockerd keeps its end of a connection open until the
 * request on it is done (response written, handler returned). So, per agent:
 *   1. SIGSTOP and wait until it is stopped: it can open no new connection from here on;
 *   2. note its socket inodes (/proc/PID/fd) and, from `ss -xnp` in ITS network namespace (the
 *      engine's end of a unix connection is created in the connecting side's namespace, not in
 *      dockerd's), the engine side of each of its connections to an engine socket: a row whose
 *      local path is the engine socket and whose peer inode is one of the agent's — with the
 *      process and fd that hold it (dockerd);
 *   3. SIGKILL and wait until it is dead (process.kill returns before the process is gone);
 *   4. wait until dockerd has closed every engine-side socket noted in 2 (its /proc/PID/fd/FD no
 *      longer names that socket): every request the agent had sent is then finished, and a create
 *      it made is in `docker ps -a`.
 * Then the sweep (sweepLabContainers) lists and removes until a listing is empty.
 *
 * Every wait is bounded and a bound that is hit is an error naming what was still open, never a
 * silent pass.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Exec } from '../adapters/exec.js';
import { MeshError } from '../core/errors.js';
import { removeLabContainers } from './containers.js';

/** A process holding a socket: its pid and the fd number. */
export interface SocketOwner { pid: number; fd: number }
/** One `ss -xnp` row: the socket's bound path ('*' when none), its inode, its peer's (0: peer gone), and who holds it. */
export interface UnixSocketRow { path: string; inode: number; peer: number; owners: SocketOwner[] }

/**
 * Rows of `ss -xnpH` (`u_str ESTAB 0 0 /var/run/docker.sock 18724628 * 18723391 users:(("dockerd",pid=9273,fd=31))`).
 * The `users:` part is cut off first (a process name may hold spaces); the rest is read from the
 * end: the local path may contain spaces, the last three fields never do. Lines that do not parse
 * (a header, blank) are skipped.
 */
export function parseUnixSockets(ssOutput: string): UnixSocketRow[] {
  const out: UnixSocketRow[] = [];
  for (const raw of ssOutput.split('\n')) {
    const at = raw.indexOf(' users:(');
    const owners = at < 0 ? [] : [...raw.slice(at).matchAll(/pid=(\d+),fd=(\d+)/g)].map((m) => ({ pid: Number(m[1]), fd: Number(m[2]) }));
    const f = (at < 0 ? raw : raw.slice(0, at)).trim().split(/\s+/);
    if (f.length < 8 || !f[0]!.startsWith('u_')) continue;
    const inode = Number(f[f.length - 3]);
    const peer = Number(f[f.length - 1]);
    if (!Number.isInteger(inode) || !Number.isInteger(peer)) continue;
    out.push({ path: f.slice(4, f.length - 3).join(' '), inode, peer, owners });
  }
  return out;
}

/** Socket inodes from the targets of /proc/PID/fd links (`socket:[123]`); other links are ignored. */
export function socketInodes(links: readonly string[]): number[] {
  const out: number[] = [];
  for (const l of links) {
    const m = /^socket:\[(\d+)\]$/.exec(l);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

/** An engine-side socket to watch: its inode and where dockerd holds it. */
export interface EngineSocket { inode: number; owners: SocketOwner[] }

/**
 * The engine side of the connections between `clients` (socket inodes of the agents) and an
 * engine socket in `engines`: the requests dockerd may still be running for them. A connection
 * dockerd has not accepted yet (no owner: its fd appears at accept) cannot be followed and is
 * counted apart.
 */
export function engineConnections(rows: readonly UnixSocketRow[], engines: readonly string[], clients: readonly number[]): { sockets: EngineSocket[]; unaccepted: number } {
  const want = new Set(clients);
  const sockets: EngineSocket[] = [];
  let unaccepted = 0;
  for (const r of rows) {
    if (!engines.includes(r.path) || !want.has(r.peer)) continue;
    if (r.inode === 0 || !r.owners.length) unaccepted++;
    else sockets.push({ inode: r.inode, owners: r.owners });
  }
  return { sockets, unaccepted };
}

/**
 * The noted engine-side sockets still open: `fdTarget(pid, fd)` (the link /proc/PID/fd/FD points
 * to, undefined when gone) still names `socket:[inode]` for one of its owners.
 */
export function stillOpen(sockets: readonly EngineSocket[], fdTarget: (pid: number, fd: number) => string | undefined): EngineSocket[] {
  return sockets.filter((s) => s.owners.some((o) => fdTarget(o.pid, o.fd) === `socket:[${s.inode}]`));
}

/**
 * After sweep round `round` (1-based) removed `removed` containers: 'done' once a listing found
 * none, 'again' to list once more (a removal proves nothing about what appeared meanwhile), and
 * 'give-up' when `maxRounds` rounds all found some (something keeps creating them).
 */
export function nextSweep(round: number, removed: number, maxRounds: number): 'done' | 'again' | 'give-up' {
  if (removed === 0) return 'done';
  return round >= maxRounds ? 'give-up' : 'again';
}

/** Process state letter from /proc/PID/stat ('' when the process is gone). */
function procState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}
const dead = (s: string): boolean => s === '' || s === 'Z' || s === 'X' || s === 'x';
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `done()` or `boundMs`; returns the ms waited and whether it ended by `done`. */
async function until(done: () => boolean | Promise<boolean>, boundMs: number, stepMs: number): Promise<{ ms: number; ok: boolean }> {
  const t0 = Date.now();
  for (;;) {
    if (await done()) return { ms: Date.now() - t0, ok: true };
    if (Date.now() - t0 >= boundMs) return { ms: Date.now() - t0, ok: false };
    await sleep(stepMs);
  }
}

function fdLinks(pid: number): string[] {
  const dir = `/proc/${pid}/fd`;
  let fds: string[] = [];
  try {
    fds = readdirSync(dir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const fd of fds) {
    try {
      out.push(readlinkSync(`${dir}/${fd}`));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** `ss -xnpH` in the network namespace of `pid` (alive): where the engine ends of its connections are. */
async function unixRowsOf(exec: Exec, pid: number): Promise<UnixSocketRow[]> {
  const r = await exec.run('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ss', '-xnpH'], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new MeshError('MESHD_EXEC_FAILED', `ss -xnpH in the namespace of ${pid}: ${r.stderr.trim().slice(0, 300)}`);
  return parseUnixSockets(r.stdout);
}

/** Target of /proc/PID/fd/FD, undefined when the fd or the process is gone. */
export function procFdTarget(pid: number, fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** What stopping the agents waited on (printed by `lab down`). */
export interface AgentStop {
  /** Agents signalled. */
  killed: number;
  /** ms from SIGKILL until every agent was dead. */
  deathMs: number;
  /** Engine requests the agents had open when stopped, and ms until dockerd had finished them all. */
  engineRequests: number;
  engineMs: number;
  /** Bounds that were hit (empty: every wait ended on what it waited for). */
  problems: string[];
}

/** Bounds: a stopped/dead agent takes ms; an engine request (vfs rootfs copy under load) seconds. */
export const STOP_BOUND_MS = 5_000;
export const DEATH_BOUND_MS = 10_000;
export const ENGINE_BOUND_MS = 120_000;

/**
 * Stops `pids` (live agents) as described at the top: SIGSTOP → note engine connections →
 * SIGKILL → dead → dockerd finished their requests. `engines`: engine socket paths of the lab.
 * Never throws for a bound that is hit; it is listed in `problems` for the caller to report.
 */
export async function stopAgents(exec: Exec, pids: readonly number[], engines: readonly string[]): Promise<AgentStop> {
  const res: AgentStop = { killed: 0, deathMs: 0, engineRequests: 0, engineMs: 0, problems: [] };
  const live = pids.filter((p) => p !== process.pid && !dead(procState(p)));
  if (!live.length) return res;
  const signal = (p: number, s: NodeJS.Signals): boolean => {
    try {
      process.kill(p, s);
      return true;
    } catch {
      return false; // already gone
    }
  };
  for (const p of live) signal(p, 'SIGSTOP');
  const stopped = await until(() => live.every((p) => { const s = procState(p); return dead(s) || s === 'T' || s === 't'; }), STOP_BOUND_MS, 5);
  if (!stopped.ok) res.problems.push(`agents not stopped ${stopped.ms} ms after SIGSTOP: ${live.filter((p) => !['T', 't'].includes(procState(p)) && !dead(procState(p))).join(', ')}`);
  let held: EngineSocket[] = [];
  const present = engines.filter((e) => existsSync(e)); // no socket file: no engine, nothing to list
  if (present.length) {
    // Per agent (stopped: its connections are fixed), in its namespace. A connection dockerd has
    // not accepted yet gets its fd at accept, which dockerd does at once: list again until none.
    const snapshot = async (): Promise<{ sockets: EngineSocket[]; unaccepted: number }> => {
      const per = await Promise.all(live.map(async (p) => {
        const clients = socketInodes(fdLinks(p));
        if (!clients.length) return { sockets: [], unaccepted: 0 };
        const rows = await unixRowsOf(exec, p).catch((e: Error) => { res.problems.push(e.message); return []; });
        return engineConnections(rows, present, clients);
      }));
      return { sockets: per.flatMap((c) => c.sockets), unaccepted: per.reduce((n, c) => n + c.unaccepted, 0) };
    };
    let c = await snapshot();
    const accepted = await until(async () => c.unaccepted === 0 || (c = await snapshot()).unaccepted === 0, STOP_BOUND_MS, 20);
    held = c.sockets;
    res.engineRequests = c.sockets.length + c.unaccepted;
    if (!accepted.ok) res.problems.push(`${c.unaccepted} connection(s) of the agents not accepted by the engine after ${accepted.ms} ms: not followed`);
  }
  for (const p of live) if (signal(p, 'SIGKILL')) res.killed++;
  const gone = await until(() => live.every((p) => dead(procState(p))), DEATH_BOUND_MS, 5);
  res.deathMs = gone.ms;
  if (!gone.ok) res.problems.push(`agents still alive ${gone.ms} ms after SIGKILL: ${live.filter((p) => !dead(procState(p))).join(', ')}`);
  if (held.length) {
    let open = held;
    const w = await until(() => (open = stillOpen(held, procFdTarget)).length === 0, ENGINE_BOUND_MS, 20);
    res.engineMs = w.ms;
    if (!w.ok) res.problems.push(`engine still serving ${open.length} request(s) of the dead agents after ${w.ms} ms (${open.map((o) => `socket ${o.inode} at ${o.owners.map((x) => `pid ${x.pid} fd ${x.fd}`).join('/')}`).join(', ')})`);
  }
  return res;
}

/** Sweep rounds: the first removes, the second must find nothing (after the barrier it does). */
export const SWEEP_ROUNDS = 3;

/**
 * removeLabContainers until a listing finds none (nextSweep). Returns the containers removed and
 * the rounds; a lab whose containers keep appearing is an error.
 */
export async function sweepLabContainers(exec: Exec, lab: string, sockets: readonly string[]): Promise<{ removed: number; rounds: number }> {
  let removed = 0;
  for (let round = 1; ; round++) {
    const n = await removeLabContainers(exec, lab, sockets);
    removed += n;
    const next = nextSweep(round, n, SWEEP_ROUNDS);
    if (next === 'done') return { removed, rounds: round };
    if (next === 'give-up') throw new MeshError('MESHD_EXEC_FAILED', `containers of lab ${lab} kept appearing: ${round} sweeps each removed some (last ${n})`);
  }
}

/** What `lab down` removed, and what stopping the agents waited on (AgentStop). */
export interface LabDownResult { namespaces: number; processes: number; containers: number; agents: AgentStop }

/** `lab down`'s line: counts, and the waits for the agents' death and their engine requests. */
export function labDownSummary(lab: string, r: LabDownResult): string {
  const a = r.agents;
  const waited = a.killed ? `; agents dead ${a.deathMs} ms after SIGKILL, ${a.engineRequests} engine request(s) of theirs finished ${a.engineMs} ms later` : '';
  return `removed lab ${lab}: ${r.namespaces} namespaces, ${r.processes} processes, ${r.containers} containers${waited}`;
}
