/**
 * What the PROXY protocol costs (`npm run bench -- proxy` → bench/results/proxy.json): a published port
 * with `proxy-protocol=v2` is accepted in userspace by the agent (src/adapters/proxy-listener.ts) and
 * spliced to the ingress sandbox, where a plain published port is only DNATed by the kernel. Both paths
 * side by side, in one run, on the same namespaces:
 *
 *   mppb-c (client 10.98.0.2) ═ veth ═ mppb-n (node 10.98.0.1 | 10.98.1.1) ═ veth ═ mppb-s (sink 10.98.1.2)
 *   kernel: c → 10.98.0.1:8001 ─ nft DNAT + masquerade in mppb-n ─► 10.98.1.2:9000
 *   proxy:  c → 10.98.0.1:8002 ─ ProxyListener (v2) in mppb-n ─► 10.98.1.2:9001 (the sink strips the header)
 *
 * The proxy runs as its own Node process inside mppb-n (as the agent does on a node); the sink and the
 * client are Node processes of this file too (`--role …`), the same on both paths, so the ratio is the
 * proxy's cost alone. Metrics: one stream of BENCH_MIB (default 256) MiB, MiB/s; BENCH_CONNS (default
 * 2,000) short connections (100 bytes up, the sink's count back), 16 at a time, connections/s. Sides
 * interleaved in BENCH_ROUNDS (default 3) rounds (bench/lib/rounds.ts). Namespaces removed at the end,
 * also on failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { realExec } from '../src/adapters/exec.js';
import { newProxyStats, ProxyListener } from '../src/adapters/proxy-listener.js';
import { decodeProxyHeader } from '../src/core/proxy-protocol.js';
import { interleave } from './lib/rounds.js';
import { pairedRow, snapshot, writeResults, type BenchRow } from './lib/results.js';

const SELF = fileURLToPath(import.meta.url);
const NS = { c: 'mppb-c', n: 'mppb-n', s: 'mppb-s' } as const;
const MIB = Number(process.env.BENCH_MIB ?? 256);
const CONNS = Number(process.env.BENCH_CONNS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const START = snapshot();

// ---- roles (run inside a namespace) ----

/** Counts bytes per connection (after a PROXY header when `header`), answers the count at the client's FIN. */
function sink(port: number, header: boolean): void {
  const srv = createServer({ allowHalfOpen: true }, (s) => {
    let n = 0;
    let pending: Buffer | null = header ? Buffer.alloc(0) : null;
    s.on('data', (d: Buffer) => {
      if (pending) {
        pending = Buffer.concat([pending, d]);
        const h = decodeProxyHeader(pending);
        if (h.status === 'incomplete') return;
        n += pending.length - h.length;
        pending = null;
        return;
      }
      n += d.length;
    });
    s.on('end', () => s.end(`${n}\n`));
    s.on('error', () => undefined);
  });
  srv.listen(port, '10.98.1.2', () => console.log('ready'));
}

function proxyRole(): void {
  const l = new ProxyListener({ host: '10.98.0.1', port: 8002, upstream: { host: '10.98.1.2', port: 9001 }, version: 'v2', maxConnections: 4096, idleTimeoutMs: 60_000, stats: newProxyStats() });
  void l.listen().then(() => console.log('ready'));
}

function oneConn(port: number, payload: Buffer | number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s: Socket = createConnection({ host: '10.98.0.1', port, allowHalfOpen: true });
    let reply = '';
    s.on('connect', () => {
      if (typeof payload !== 'number') return void s.end(payload);
      const chunk = Buffer.alloc(256 * 1024, 1);
      let left = payload;
      const pump = () => {
        while (left > 0) {
          const c = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= c.length;
          if (!s.write(c)) return void s.once('drain', pump);
        }
        s.end();
      };
      pump();
    });
    s.on('data', (d: Buffer) => (reply += d.toString()));
    s.on('error', reject);
    s.on('close', () => resolve(Number(reply.trim())));
  });
}

async function client(kind: string, port: number): Promise<void> {
  const t0 = performance.now();
  if (kind === 'bulk') {
    const got = await oneConn(port, MIB * 2 ** 20);
    if (got !== MIB * 2 ** 20) throw new Error(`sink counted ${got} bytes of ${MIB * 2 ** 20}`);
  } else {
    let next = 0;
    const worker = async () => {
      while (next < CONNS) {
        next++;
        const got = await oneConn(port, Buffer.alloc(100, 2));
        if (got !== 100) throw new Error(`sink counted ${got} bytes of 100`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  }
  console.log(JSON.stringify({ ms: performance.now() - t0 }));
}

// ---- the bench ----

function inNs(ns: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, SELF, '--role', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function ready(p: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} did not say ready in 60 s`)), 60_000);
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    p.once('exit', (code) => reject(new Error(`${what} exited (${code}) before ready`)));
  });
}

async function run(kind: 'bulk' | 'conns', port: number): Promise<number> {
  const p = inNs(NS.c, ['client', kind, String(port)]);
  let out = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  if (code !== 0) throw new Error(`client ${kind} :${port} exited ${code}`);
  const ms = (JSON.parse(out.trim().split('\n').pop()!) as { ms: number }).ms;
  return kind === 'bulk' ? Math.round((MIB / (ms / 1000)) * 10) / 10 : Math.round(CONNS / (ms / 1000));
}

async function teardown(): Promise<void> {
  for (const ns of Object.values(NS)) await realExec.run('ip', ['netns', 'del', ns]);
}

async function setup(): Promise<void> {
  await teardown();
  for (const ns of Object.values(NS)) {
    await realExec.check('ip', ['netns', 'add', ns]);
    await realExec.check('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await realExec.check('ip', ['-n', NS.c, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'c0', 'netns', NS.n]);
  await realExec.check('ip', ['-n', NS.s, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 's0', 'netns', NS.n]);
  await realExec.check('ip', ['-n', NS.c, '-batch', '-'], { input: 'addr add 10.98.0.2/24 dev eth0\nlink set eth0 up\nroute add default via 10.98.0.1\n' });
  await realExec.check('ip', ['-n', NS.s, '-batch', '-'], { input: 'addr add 10.98.1.2/24 dev eth0\nlink set eth0 up\nroute add default via 10.98.1.1\n' });
  await realExec.check('ip', ['-n', NS.n, '-batch', '-'], { input: 'addr add 10.98.0.1/24 dev c0\nlink set c0 up\naddr add 10.98.1.1/24 dev s0\nlink set s0 up\n' });
  await realExec.check('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'], { netns: NS.n });
  // The kernel path of a `cluster` published port: DNAT to the task, masquerade toward it.
  await realExec.check('nft', ['-f', '-'], {
    netns: NS.n,
    input: 'table ip mppb {\n\tchain pre {\n\t\ttype nat hook prerouting priority -100; policy accept;\n\t\tip daddr 10.98.0.1 tcp dport 8001 dnat to 10.98.1.2:9000\n\t}\n\tchain post {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\tip daddr 10.98.1.2 tcp dport 9000 masquerade\n\t}\n}\n',
  });
}

async function main(): Promise<void> {
  const procs: ChildProcess[] = [];
  const rows: BenchRow[] = [];
  try {
    await setup();
    const s0 = inNs(NS.s, ['sink', '9000', 'plain']);
    const s1 = inNs(NS.s, ['sink', '9001', 'header']);
    const px = inNs(NS.n, ['proxy']);
    procs.push(s0, s1, px);
    await Promise.all([ready(s0, 'sink :9000'), ready(s1, 'sink :9001'), ready(px, 'proxy :8002')]);
    for (const kind of ['bulk', 'conns'] as const) {
      const got = await interleave(ROUNDS, [
        { name: 'proxy', run: () => run(kind, 8002) },
        { name: 'kernel', run: () => run(kind, 8001) },
      ], { onRound: (r, g) => console.log(`  ${kind} round ${r + 1}: proxy ${g.proxy} kernel ${g.kernel}`) });
      rows.push(kind === 'bulk'
        ? pairedRow(`one TCP stream of ${MIB} MiB, PROXY v2 userspace proxy vs kernel DNAT`, 'MiB/s', got.proxy!, got.kernel!, 'kernel DNAT + masquerade (a plain published port)', 'higher', { note: 'client, proxy and sink share 2 CPUs' })
        : pairedRow(`${CONNS} short connections (16 at a time), PROXY v2 userspace proxy vs kernel DNAT`, 'conn/s', got.proxy!, got.kernel!, 'kernel DNAT + masquerade (a plain published port)', 'higher', { note: 'connection setup dominates: accept + connect + header per connection in the proxy' }));
    }
    writeResults('proxy', rows, { mib: MIB, conns: CONNS }, { start: START });
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await teardown();
  }
}

const i = process.argv.indexOf('--role');
if (i >= 0) {
  const [role, a, b] = process.argv.slice(i + 1);
  if (role === 'sink') sink(Number(a), b === 'header');
  else if (role === 'proxy') proxyRole();
  else void client(a!, Number(b)).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
