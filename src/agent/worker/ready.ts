/**
 * Start readiness of a task: a task is published `running` (and so receives connections from
 * every node's LB) only once it listens on its target ports, or has exited (a failed start —
 * it never enters the LB), or `timeoutMs` passed (then it is published anyway: a program may
 * legitimately listen late or on other ports; the worker logs that).
 *
 * Why: spawning is not serving. A node.js whoami needs 100 ms to seconds (loaded host) before it
 * binds, while peers' LBs pick a new `running` record up in tens of ms; a program that exits at
 * once (a broken image in a rolling update) would otherwise be a backend refusing connections
 * until the next converge reaps it.
 *
 * How: `/proc/<pid>/net/{tcp,tcp6,udp,udp6}` lists the sockets of the task's network namespace
 * (netns runtime: `ip netns exec` execs the program, so the pid is the task's). No process is
 * spawned per check. Unreadable (process gone) counts as exited.
 */
import { readFile } from 'node:fs/promises';

export interface PortRef {
  proto: 'tcp' | 'udp';
  port: number;
}

/**
 * Local ports of a /proc/net/{tcp,udp}[6] table that serve: TCP sockets in LISTEN (st 0A),
 * UDP sockets bound and unconnected (st 07). Header and malformed lines are skipped.
 */
export function servingPorts(text: string, proto: 'tcp' | 'udp'): Set<number> {
  const out = new Set<number>();
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || !/^\d+:$/.test(f[0] ?? '')) continue;
    const local = f[1] ?? '';
    const st = (f[3] ?? '').toUpperCase();
    if (st !== (proto === 'tcp' ? '0A' : '07')) continue;
    const i = local.lastIndexOf(':');
    const port = parseInt(local.slice(i + 1), 16);
    if (i > 0 && Number.isInteger(port) && port > 0 && port < 65536) out.add(port);
  }
  return out;
}

/** Which of `want` are not served yet, given the serving ports per protocol. */
export function missingPorts(want: readonly PortRef[], serving: { tcp: ReadonlySet<number>; udp: ReadonlySet<number> }): PortRef[] {
  const seen = new Set<string>();
  const out: PortRef[] = [];
  for (const p of want) {
    const k = `${p.proto}/${p.port}`;
    if (seen.has(k)) continue;
    seen.add(k);
    if (!serving[p.proto].has(p.port)) out.push(p);
  }
  return out;
}

export type Readiness = 'ready' | 'exited' | 'timeout';

/** Reads a task process's socket tables; null when the process is gone. */
async function serving(pid: number): Promise<{ tcp: Set<number>; udp: Set<number> } | null> {
  const read = (f: string) => readFile(`/proc/${pid}/net/${f}`, 'utf8');
  try {
    const [t4, u4] = await Promise.all([read('tcp'), read('udp')]);
    const [t6, u6] = await Promise.all([read('tcp6').catch(() => ''), read('udp6').catch(() => '')]);
    return { tcp: new Set([...servingPorts(t4, 'tcp'), ...servingPorts(t6, 'tcp')]), udp: new Set([...servingPorts(u4, 'udp'), ...servingPorts(u6, 'udp')]) };
  } catch {
    return null;
  }
}

/** Polls every `stepMs` until every port serves, the process is gone, or `timeoutMs` passed. */
export async function waitServing(pid: number, ports: readonly PortRef[], timeoutMs: number, stepMs = 25): Promise<Readiness> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await serving(pid);
    if (!s) return 'exited';
    if (missingPorts(ports, s).length === 0) return 'ready';
    if (Date.now() >= deadline) return 'timeout';
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
