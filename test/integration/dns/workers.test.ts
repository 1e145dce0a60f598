/**
 * DNS worker processes (real processes, real sockets on 127.0.0.1): several processes answer on the one
 * listening socket; a registry change reaches every process within the sync bound; counters add up over
 * processes; a SIGKILLed worker is respawned while the others keep answering; a sandbox socket shared
 * with the workers follows its networks (retag) and is really closed everywhere on detach (its port can
 * be bound again); close() leaves no worker behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import DNS from 'dns2';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { UDP_PATHS } from './paths.js';
import { DnsServer, type SandboxTag } from '../../../src/adapters/dns-server/server.js';
import { buildQuery } from '../../unit/dns/helpers.js';

const { Packet } = DNS;

/**
 * Whether `pid` can no longer read a socket: gone, or a zombie (Z/X in /proc/PID/stat: its files are
 * already closed). A SIGKILLed process is neither for a short while after kill() returns.
 */
function exited(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^\S+ \(.*\) [ZX]/.test(stat);
  } catch {
    return true;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A client socket that sends queries and collects replies by ID. */
class Client {
  private readonly sock: UdpSocket = createSocket('udp4');
  private readonly waiting = new Map<number, (b: Buffer) => void>();
  private id = 1;
  constructor() {
    this.sock.on('message', (m) => {
      const id = m.readUInt16BE(0);
      this.waiting.get(id)?.(m);
      this.waiting.delete(id);
    });
  }
  /** A records of `name` (null on timeout). */
  async ask(port: number, name: string, timeoutMs = 2000): Promise<string[] | null> {
    const id = (this.id = (this.id % 65535) + 1);
    const q = buildQuery({ id, name: name.split('.') });
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      this.waiting.set(id, (b) => {
        clearTimeout(t);
        const p = Packet.parse(b);
        resolve(p.answers.map((a) => (a as unknown as { address: string }).address));
      });
      this.sock.send(q, port, '127.0.0.1');
    });
  }
  /**
   * `n` queries in waves of 50 (a wave of hundreds would overflow the client's own receive buffer);
   * `beforeSend` runs just before each query is sent.
   */
  async burst(n: number, port: number, name: string, timeoutMs = 2000, beforeSend?: () => void): Promise<Array<string[] | null>> {
    const out: Array<string[] | null> = [];
    for (let i = 0; i < n; i += 50) out.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, () => (beforeSend?.(), this.ask(port, name, timeoutMs))))));
    return out;
  }
  close(): void {
    this.sock.close();
  }
}

for (const udpPath of UDP_PATHS) describe(`dns worker processes (udp ${udpPath})`, { timeout: 120_000 }, () => {
  const registry = new DnsRegistry();
  registry.upsertService({ name: 'web', network: 'default', mode: 'vip', vip: '10.9.0.2' }, 0);
  registry.upsertService({ name: 'api', network: 'other', mode: 'vip', vip: '10.8.0.2' }, 0);
  const events: string[] = [];
  const server = new DnsServer({ udp: udpPath, registry, listen: [{ address: '127.0.0.1', port: 0 }], upstreams: [], workers: 3, workerStatsMs: 200, onWorkerEvent: (e) => events.push(e) });
  const client = new Client();
  let port = 0;
  let pids: number[] = [];

  before(async () => {
    [{ port }] = (await server.start()) as [{ port: number; address: string }];
    await server.workersReady();
    pids = server.workerPids();
  });
  after(async () => {
    client.close();
    await server.close();
  });

  test('three processes answer on one socket; counters add up over them', async () => {
    assert.equal(pids.length, 2);
    assert.equal(server.udpReport().path, udpPath);
    assert.deepEqual(events.filter((e) => e.startsWith('dns worker error')), [], 'a worker could not take the UDP path');
    const n = 600;
    const answers = await client.burst(n, port, 'web');
    assert.deepEqual(new Set(answers.map((a) => JSON.stringify(a))), new Set([JSON.stringify(['10.9.0.2'])]));
    const all = await server.collectStats();
    const own = server.handler.snapshot();
    assert.equal(all.queries.udp, n);
    assert.equal(all.answers.NOERROR, n);
    assert.equal(all.latency.count, n);
    // The workers answered part of it (the kernel hands each datagram to one reader).
    assert.ok(own.queries.udp < n, `the agent process answered all ${n}: the workers served nothing`);
    // Per process, per socket: every datagram read by exactly one process, each answered by the one that read it.
    const procs = server.socketReport();
    assert.deepEqual(procs.map((p) => p.role), ['agent', 'worker', 'worker']);
    const mine = procs.map((p) => p.sockets.find((c) => c.id === procs[0]!.sockets[0]!.id));
    assert.ok(mine.every((c) => c !== undefined && c.path === udpPath && c.fds.length === (udpPath === 'native' ? 2 : 1)), JSON.stringify(procs));
    assert.equal(mine.reduce((a, c) => a + c!.read, 0), n, JSON.stringify(procs));
    assert.equal(mine.reduce((a, c) => a + c!.answered, 0), n, JSON.stringify(procs));
    assert.equal(mine[0]!.read, own.queries.udp);
  });

  test('a registry change reaches every process within the sync bound', async () => {
    registry.upsertService({ name: 'web', network: 'default', mode: 'vip', vip: '10.9.0.3' }, 1);
    const t0 = Date.now();
    await waitFor('every process answering the new VIP', async () => {
      const a = await client.burst(60, port, 'web');
      return a.every((x) => x?.[0] === '10.9.0.3');
    });
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
  });

  test('a SIGKILLed worker is respawned; answers never stop', async () => {
    const victim = pids[0]!;
    process.kill(victim, 'SIGKILL');
    // All processes read one kernel queue, so the only queries a kill can lose are those the victim
    // dequeued before it died: at most the ones sent while it had not yet exited. Count them.
    let sentBeforeExit = 0;
    const during = await client.burst(200, port, 'web', 3000, () => {
      if (!exited(victim)) sentBeforeExit++;
    });
    const answered = during.filter((x) => x?.[0] === '10.9.0.3').length;
    console.log(`# worker SIGKILLed: ${answered}/200 answered during its absence; ${sentBeforeExit} sent before it had exited (the most it could take with it)`);
    assert.ok(answered >= 200 - sentBeforeExit, `answers lost beyond what the dying worker could have dequeued: ${answered}/200 answered, ${sentBeforeExit} sent before it exited`);
    await waitFor('the worker respawned', () => server.workerPids().length === 2 && !server.workerPids().includes(victim));
    assert.ok(events.includes('dns worker exited; respawning'));
    const a = await client.burst(100, port, 'web');
    assert.ok(a.every((x) => x?.[0] === '10.9.0.3'));
    pids = server.workerPids();
  });

  test('a sandbox socket: served by the workers with its networks, retagged, and closed everywhere on detach', async () => {
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind({ address: '127.0.0.1', port: 0, exclusive: true }, () => r()));
    const sport = udp.address().port;
    const tcp = createServer();
    await new Promise<void>((r) => tcp.listen({ host: '127.0.0.1', port: 0 }, () => r()));
    const tag: SandboxTag = { networks: ['other'] };
    const detach = server.attachSandbox({ udp, tcp }, tag);
    const before = server.handler.snapshot().queries.udp;
    const a = await client.burst(200, sport, 'api');
    assert.ok(a.every((x) => x?.[0] === '10.8.0.2'), JSON.stringify(a.slice(0, 5)));
    assert.ok(server.handler.snapshot().queries.udp - before < 200, 'the workers did not serve the sandbox socket');
    tag.networks = ['default'];
    server.retagSandbox(tag);
    await waitFor('every process using the new networks', async () => {
      const b = await client.burst(60, sport, 'web');
      return b.every((x) => x?.[0] === '10.9.0.3');
    });
    await detach();
    // No process may still hold the socket: the very same port binds again, exclusively.
    const again = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind({ address: '127.0.0.1', port: sport, exclusive: true }, () => resolve());
    });
    again.close();
  });

  test('close() stops every worker', async () => {
    const live = server.workerPids();
    await server.close();
    await waitFor('workers gone', () => live.every((p) => !alive(p)), 10_000);
  });
});
