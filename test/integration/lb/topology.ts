/**
 * Test topology in real namespaces (all named PREFIX-*; deleting them removes every link, nft table
 * and conntrack entry made inside):
 *
 *   client (10.78.0.2) ──cl0── lb sandbox ──be0 (10.77.0.1)── bridge br0 in "sw" ── b1..bN (10.77.0.1x)
 *                      10.78.0.1
 *
 * The lb sandbox forwards; backends and client route through it, so replies always cross the
 * sandbox's conntrack (needed for DNAT without SNAT: the `local` policy and plain VIP from client).
 * VIPs (10.96.0.0/16) are routed out of be0 in the lb sandbox, as a container's default route would.
 *
 * Dual stack (issue #19 item 2, IPv6 published ports and VIPs on every dataplane): the same links
 * also carry fd7a:78::/64 (client side: lb ::1, client ::2) and fd7a:77::/64 (backend side: lb ::1,
 * bN ::1x), addresses added `nodad` (usable at once), IPv6 forwarding on in the lb sandbox, and
 * IPv6 VIPs (fd7a:96::/64) routed out of be0. The probe servers listen on `::` (both families).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { realExec } from '../../../src/adapters/exec.js';

export const PROBE = fileURLToPath(new URL('./probe.js', import.meta.url));

export interface Topology {
  prefix: string;
  sw: string;
  lb: string;
  client: string;
  backends: { name: string; ns: string; ip: string; ip6: string }[];
  lbClientSideIp: string;
  lbBackendSideIp: string;
  clientIp: string;
  lbClientSideIp6: string;
  lbBackendSideIp6: string;
  clientIp6: string;
  servers: ChildProcess[];
}

export function names(prefix: string, nBackends: number): Topology {
  return {
    prefix,
    sw: `${prefix}-sw`,
    lb: `${prefix}-lb`,
    client: `${prefix}-cl`,
    backends: Array.from({ length: nBackends }, (_, i) => ({ name: `b${i + 1}`, ns: `${prefix}-b${i + 1}`, ip: `10.77.0.${11 + i}`, ip6: `fd7a:77::${11 + i}` })),
    lbClientSideIp: '10.78.0.1',
    lbBackendSideIp: '10.77.0.1',
    clientIp: '10.78.0.2',
    lbClientSideIp6: 'fd7a:78::1',
    lbBackendSideIp6: 'fd7a:77::1',
    clientIp6: 'fd7a:78::2',
    servers: [],
  };
}

function allNs(t: Topology): string[] {
  return [t.sw, t.lb, t.client, ...t.backends.map((b) => b.ns)];
}

export async function teardown(t: Topology): Promise<void> {
  for (const s of t.servers) if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
  t.servers = [];
  await realExec.run('ip', ['-force', '-batch', '-'], { input: allNs(t).map((n) => `netns del ${n}`).join('\n') + '\n' });
}

function waitReady(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what}: not ready after 10 s`)), 10_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited ${code}`));
    });
  });
}

export async function setup(t: Topology, port = 8080): Promise<void> {
  await teardown(t); // leftovers of an interrupted run
  const root = [
    ...allNs(t).map((n) => `netns add ${n}`),
    `link add be0 netns ${t.lb} type veth peer name lb0 netns ${t.sw}`,
    `link add eth0 netns ${t.client} type veth peer name cl0 netns ${t.lb}`,
    ...t.backends.map((b) => `link add eth0 netns ${b.ns} type veth peer name ${b.name} netns ${t.sw}`),
  ];
  await realExec.check('ip', ['-batch', '-'], { input: root.join('\n') + '\n' });
  const batch = async (ns: string, lines: string[]): Promise<void> => {
    await realExec.check('ip', ['-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
  };
  await batch(t.sw, ['link set lo up', 'link add br0 type bridge', 'link set br0 up', 'link set lb0 master br0', 'link set lb0 up', ...t.backends.flatMap((b) => [`link set ${b.name} master br0`, `link set ${b.name} up`])]);
  await batch(t.lb, ['link set lo up', `addr add ${t.lbBackendSideIp}/24 dev be0`, `addr add ${t.lbBackendSideIp6}/64 dev be0 nodad`, 'link set be0 up', `addr add ${t.lbClientSideIp}/24 dev cl0`, `addr add ${t.lbClientSideIp6}/64 dev cl0 nodad`, 'link set cl0 up', 'route add 10.96.0.0/16 dev be0', 'route add fd7a:96::/64 dev be0']);
  await batch(t.client, ['link set lo up', `addr add ${t.clientIp}/24 dev eth0`, `addr add ${t.clientIp6}/64 dev eth0 nodad`, 'link set eth0 up', `route add default via ${t.lbClientSideIp}`, `route add default via ${t.lbClientSideIp6}`]);
  for (const b of t.backends) await batch(b.ns, ['link set lo up', `addr add ${b.ip}/24 dev eth0`, `addr add ${b.ip6}/64 dev eth0 nodad`, 'link set eth0 up', `route add default via ${t.lbBackendSideIp}`, `route add default via ${t.lbBackendSideIp6}`]);
  await realExec.check('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'], { netns: t.lb });
  for (const b of t.backends) await serve(t, b.ns, b.name, port);
}

/** Starts a probe server named `name` in `ns` on `port` (both families); stopped by `teardown`. */
export async function serve(t: Topology, ns: string, name: string, port: number): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, PROBE, 'serve', name, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.servers.push(child);
  await waitReady(child, `server ${name} in ${ns}`);
}

export interface ProbeResult {
  ok: boolean;
  name?: string;
  peer?: string;
  ms: number;
  err?: string;
}

/** N sequential connections from inside `ns`. */
export async function many(ns: string, host: string, port: number, n: number, timeoutMs = 2000): Promise<ProbeResult[]> {
  const out = await realExec.check(process.execPath, [PROBE, 'many', host, String(port), String(n), String(timeoutMs)], { netns: ns, timeoutMs: n * timeoutMs + 10_000 });
  return (JSON.parse(out) as { results: ProbeResult[] }).results;
}

export interface Loop {
  /** Ends the loop; resolves with every connection's result, in order. */
  stop(): Promise<ProbeResult[]>;
}

/**
 * Sequential connections from inside `ns` until stopped (a request loop running while the test
 * changes the dataplane). Resolves once the first connection has an answer, so the loop is known
 * to be running before the change.
 */
export function loop(ns: string, host: string, port: number, timeoutMs = 2000): Promise<Loop> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, PROBE, 'loop', host, String(port), String(timeoutMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let onLine: (() => void) | null = null;
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    onLine?.();
  });
  const exited = new Promise<void>((r) => child.on('close', () => r()));
  const kill = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  // generous: includes starting node in the namespace, ~1-3 s under qemu TCG on a busy host
  return new Promise<Loop>((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`loop ${host}:${port} in ${ns}: no first answer in 15 s; output: ${out.slice(0, 300)}`));
    }, 15_000);
    onLine = () => {
      if (!out.includes('{"started":true}')) return;
      onLine = null;
      clearTimeout(timer);
      resolve({
        stop: async () => {
          child.stdin.write('\n');
          const guard = setTimeout(kill, 10_000);
          await exited;
          clearTimeout(guard);
          const last = out.trim().split('\n').pop() ?? '';
          if (!last.startsWith('{"results"')) throw new Error(`loop ${host}:${port}: no results (killed?); output tail: ${out.slice(-300)}`);
          return (JSON.parse(last) as { results: ProbeResult[] }).results;
        },
      });
    };
    child.on('close', () => {
      clearTimeout(timer);
      reject(new Error(`loop ${host}:${port} in ${ns} exited before its first answer: ${out.slice(0, 300)}`));
    });
  });
}

export interface Held {
  greeting: string;
  /** Sends a line on the held connection and resolves with the reply line. */
  ping(): Promise<string>;
  close(): void;
}

/** One long-lived connection from inside `ns` (to test that established flows survive a drain). */
export function hold(ns: string, host: string, port: number): Promise<Held> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, PROBE, 'hold', host, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let waiter: ((l: string) => void) | null = null;
  let buf = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (waiter) {
        const w = waiter;
        waiter = null;
        w(l);
      } else lines.push(l);
    }
  });
  const next = (ms: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const l = lines.shift();
      if (l !== undefined) return resolve(l);
      const timer = setTimeout(() => reject(new Error('hold: no answer')), ms);
      waiter = (x) => {
        clearTimeout(timer);
        resolve(x);
      };
    });
  const close = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  // generous: this wait includes starting node in the namespace, ~1–3 s under qemu TCG on a busy host
  return next(15_000).then(
    (first) => {
      const j = JSON.parse(first) as { greeting?: string; error?: string };
      if (!j.greeting) {
        close();
        throw new Error(`hold: ${j.error ?? first}`);
      }
      return {
        greeting: j.greeting,
        ping: async () => {
          child.stdin.write('\n');
          const r = JSON.parse(await next(10_000)) as { reply?: string };
          return r.reply ?? '';
        },
        close,
      };
    },
    (e: unknown) => {
      close();
      throw e;
    },
  );
}
