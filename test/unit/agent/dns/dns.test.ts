/**
 * The agent's DNS subsystem without a lab: pure helpers (table tests), the registry feed from
 * gossip table events (fake gossip), and DnsServer.attachSandbox serving sockets handed in from
 * outside (real sockets on 127.0.0.1, tagged with networks).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FakeGossip } from '../../../helpers/fake-gossip.js';
import { stepUntil } from '../../../helpers/until.js';
import { parseQtype, qtypeName, taskNetworks } from '../../../../src/agent/dns/plan.js';
import { retryDelayMs, sameNetworks } from '../../../../src/agent/dns/sandboxes.js';
import { DnsSubsystem } from '../../../../src/agent/dns/dns.js';
import type { GossipSubsystem } from '../../../../src/agent/gossip/gossip.js';
import { renderDnsDebug } from '../../../../src/cli/dns-commands.js';
import { DnsServer } from '../../../../src/adapters/dns-server/server.js';
import { DnsRegistry } from '../../../../src/core/dns/registry.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipEvent } from '../../../../src/core/gossip/index.js';
import type { Exec } from '../../../../src/adapters/exec.js';
import { buildQuery } from '../../dns/helpers.js';

const log = pino({ level: 'silent' });

describe('dns-plan helpers', () => {
  test('parseQtype', () => {
    const ok: Array<[string, number]> = [['A', 1], ['a', 1], ['AAAA', 28], ['ptr', 12], ['SRV', 33], ['ANY', 255], ['28', 28], ['TYPE65', 65], [' mx ', 15]];
    for (const [raw, want] of ok) assert.equal(parseQtype(raw), want, raw);
    for (const raw of ['', 'AA', '0', '65536', 'TYPE0', 'A1', '-1']) assert.throws(() => parseQtype(raw), /unknown query type/, raw);
  });
  test('qtypeName', () => {
    assert.equal(qtypeName(1), 'A');
    assert.equal(qtypeName(28), 'AAAA');
    assert.equal(qtypeName(65), 'TYPE65');
  });
  test('taskNetworks: sorted, unique, filtered', () => {
    const r = (taskId: string, networkName: string): EndpointRecord => rec({ taskId, networkName, network: `id${networkName}` });
    assert.deepEqual(taskNetworks([r('a', 'zeta'), r('a', 'app'), r('b', 'other'), r('a', 'app')], (x) => x.taskId === 'a'), ['app', 'zeta']);
    assert.deepEqual(taskNetworks([], () => true), []);
  });
  test('retryDelayMs doubles from 250 ms to a 30 s cap', () => {
    assert.deepEqual([1, 2, 3, 4, 8, 9, 50].map(retryDelayMs), [250, 500, 1000, 2000, 30_000, 30_000, 30_000]);
  });
  test('sameNetworks', () => {
    assert.equal(sameNetworks(['a', 'b'], ['a', 'b']), true);
    assert.equal(sameNetworks(['a', 'b'], ['b', 'a']), false);
    assert.equal(sameNetworks(undefined, undefined), true);
    assert.equal(sameNetworks(['a'], undefined), false);
  });
  test('renderDnsDebug names sources and upstreams', () => {
    const base = { node: 'n1', from: { task: 't1', taskName: 'web.1', node: 'n2', networks: ['app'] }, type: 'A', question: { name: 'web', type: 1, networks: ['app'] } };
    const a = renderDnsDebug({ ...base, outcome: 'answer', records: [{ type: 1, data: '10.0.0.100' }], sources: [{ kind: 'service', network: 'app', name: 'web', ageMs: 1500, detail: 'vip 10.0.0.100' }], note: 'single answer' });
    assert.match(a, /web A as task web\.1 \(on n2\), networks: app/);
    assert.match(a, /answer: 10\.0\.0\.100/);
    assert.match(a, /service\s+app\s+web\s+-\s+1\.5s\s+vip 10\.0\.0\.100/);
    const f = renderDnsDebug({ ...base, from: null, outcome: 'forward', records: [], sources: [], note: 'forwarded upstream: not a registered name', upstream: { address: '10.1.1.1', port: 53, ms: 3, rcode: 'NXDOMAIN', answers: [] } });
    assert.match(f, /as node n1/);
    assert.match(f, /upstream 10\.1\.1\.1:53 answered NXDOMAIN in 3 ms/);
  });
});

let n = 0;
function rec(over: Partial<EndpointRecord> = {}): EndpointRecord {
  n++;
  return {
    v: 1, taskId: `task${n}`, taskName: `web.${n}`, serviceId: 'svcweb', serviceName: 'web', network: 'net1', networkName: 'app',
    ip: `10.0.0.${10 + n}`, mac: '02:42:0a:00:00:0b', node: 'n2', nodeIp: '10.99.1.2', vip: '10.0.0.100', endpointMode: 'vip',
    aliases: [], ports: [], state: 'running', ...over,
  };
}

const noExec: Exec = {
  run: async () => ({ code: 0, stdout: '', stderr: '' }),
  check: async () => '',
};

async function subsystem(g: FakeGossip): Promise<DnsSubsystem> {
  const s = new DnsSubsystem({
    nodeName: 'n1', prefix: 'mtest-n1-', gossip: g as unknown as GossipSubsystem, clock: new ManualClock(0), log, exec: noExec,
    upstreams: [], netnsDir: mkdtempSync(join(tmpdir(), 'dnsagent-')), resyncMs: 3_600_000,
  });
  await s.start();
  return s;
}

const ips = (s: DnsSubsystem, name: string, nets = ['app']): string[] => {
  const e = s.server.explain(nets, name, 1);
  return e.outcome === 'answer' ? e.records.map((r) => r.data).sort() : [e.outcome];
};

describe('DnsSubsystem feed from the endpoints table', () => {
  test('running → answers; draining → out of tasks.x; delete → gone; last task gone → service gone', async () => {
    const g = new FakeGossip();
    const s = await subsystem(g);
    try {
      const a = rec({ ip: '10.0.0.11' });
      const b = rec({ ip: '10.0.0.12', node: 'n3' });
      g.set(a);
      g.set(b, 'n3');
      assert.deepEqual(ips(s, 'tasks.web'), ['10.0.0.11', '10.0.0.12']);
      assert.deepEqual(ips(s, 'web'), ['10.0.0.100']);
      assert.deepEqual(ips(s, 'web.app', ['app']), ['10.0.0.100']);
      g.set({ ...a, state: 'draining' });
      assert.deepEqual(ips(s, 'tasks.web'), ['10.0.0.12']);
      g.del(a);
      assert.deepEqual(ips(s, a.taskName), ['forward']);
      assert.deepEqual(ips(s, 'web'), ['10.0.0.100']);
      g.del(b);
      // The LB keeps the VIP rejecting at once; the name keeps answering it (not forwarded upstream).
      assert.deepEqual(ips(s, 'web'), ['10.0.0.100']);
      assert.deepEqual(ips(s, 'tasks.web'), ['nodata']);
      g.emit({ type: 'network-leave', node: 'n2', network: 'net1' });
      assert.deepEqual(ips(s, 'web'), ['10.0.0.100'], 'another node leaving changes nothing');
      g.emit({ type: 'network-leave', node: 'n1', network: 'net1' });
      assert.deepEqual(ips(s, 'web'), ['forward'], 'we left the network: forgotten');
      assert.equal(s.registry.size(), 0);
    } finally {
      await s.stop();
    }
  });

  test('a task name held by two records (a re-keyed task) keeps answering until the last of them goes; a renamed record frees its old name', async () => {
    const g = new FakeGossip();
    const s = await subsystem(g);
    try {
      const a = rec({ ip: '10.0.0.21', taskName: 'web.twin' });
      const b = rec({ ip: '10.0.0.21', taskName: 'web.twin' });
      g.set(a);
      g.set(b);
      assert.deepEqual(ips(s, 'web.twin'), ['10.0.0.21']);
      g.set({ ...a, state: 'draining' }); // a replaced in place: still one holder of the name
      g.del(a);
      assert.deepEqual(ips(s, 'web.twin'), ['10.0.0.21'], 'b still names the task');
      g.set({ ...b, taskName: 'web.renamed' });
      assert.deepEqual(ips(s, 'web.twin'), ['forward'], 'the last holder was renamed: the old name is gone');
      assert.deepEqual(ips(s, 'web.renamed'), ['10.0.0.21']);
      g.del(b);
      assert.deepEqual(ips(s, 'web.renamed'), ['forward']);
    } finally {
      await s.stop();
    }
  });

  test('a remembered empty VIP service gives way to a new service with its name or its VIP', async () => {
    const g = new FakeGossip();
    const s = await subsystem(g);
    try {
      const a = rec({ ip: '10.0.0.11' });
      g.set(a);
      g.del(a);
      assert.deepEqual(ips(s, 'web'), ['10.0.0.100']);
      g.set(rec({ taskId: 't9', serviceName: 'api', taskName: 'api.1', ip: '10.0.0.21' }));
      assert.deepEqual(ips(s, 'api'), ['10.0.0.100']);
      assert.deepEqual(ips(s, 'web'), ['forward'], 'the VIP now belongs to api');
      g.set(rec({ taskId: 't10', serviceName: 'api', taskName: 'api.2', ip: '10.0.0.22', vip: '10.0.0.101' }));
      assert.deepEqual(ips(s, 'api'), ['10.0.0.101'], 'the last record names the VIP');
    } finally {
      await s.stop();
    }
  });

  test('dnsrr service answers task IPs', async () => {
    const g = new FakeGossip();
    const s = await subsystem(g);
    try {
      g.set(rec({ serviceName: 'rr', taskName: 'rr.1', ip: '10.0.0.31', vip: null, endpointMode: 'dnsrr' }));
      g.set(rec({ serviceName: 'rr', taskName: 'rr.2', ip: '10.0.0.32', vip: null, endpointMode: 'dnsrr' }));
      assert.deepEqual(ips(s, 'rr'), ['10.0.0.31', '10.0.0.32']);
    } finally {
      await s.stop();
    }
  });

  test('bad records are counted and drop the previous value of that key', async () => {
    const g = new FakeGossip();
    const s = await subsystem(g);
    try {
      const a = rec({ ip: '10.0.0.11' });
      g.set(a);
      g.set(a, 'n2', new TextEncoder().encode('{"v":1,"not":"a record"}'));
      assert.equal(s.counters.badRecords, 1);
      assert.deepEqual(ips(s, 'tasks.web'), ['nodata'], 'no task left; the VIP service is remembered');
      g.set(rec({ taskId: 'other', network: 'net1' }), 'n2', encodeEndpoint(rec({ taskId: 'mismatch' })));
      assert.equal(s.counters.badRecords, 2);
    } finally {
      await s.stop();
    }
  });

  test('member-dead drops the node\'s entries; resync restores from the tables', async () => {
    const g = new FakeGossip();
    const s = await subsystem(g);
    try {
      g.set(rec({ ip: '10.0.0.11', node: 'n2' }), 'n2');
      g.set(rec({ ip: '10.0.0.12', node: 'n3' }), 'n3');
      g.emit({ type: 'member-dead', name: 'n3', addr: '10.99.1.3:7946', incarnation: 1 });
      assert.deepEqual(ips(s, 'tasks.web'), ['10.0.0.11']);
      s.resync(); // the fake's table still holds n3's entry (a real core would have purged it too)
      assert.deepEqual(ips(s, 'tasks.web'), ['10.0.0.11', '10.0.0.12']);
      g.tables.get('net1')!.clear();
      s.resync();
      assert.deepEqual(ips(s, 'tasks.web'), ['nodata'], 'no task left; the VIP service is remembered');
    } finally {
      await s.stop();
    }
  });
});

describe('DnsServer.attachSandbox', () => {
  test('sockets handed in are served with their tag\'s networks; closing stops them', async () => {
    const registry = new DnsRegistry();
    registry.upsertService({ name: 'web', network: 'a', mode: 'vip', vip: '10.1.0.100' }, 0);
    registry.upsertService({ name: 'web', network: 'b', mode: 'vip', vip: '10.2.0.100' }, 0);
    const server = new DnsServer({ registry, listen: [], networksOf: () => undefined, upstreams: [] });
    await server.start();
    const tcp: Server = createServer();
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
    const port = (tcp.address() as { port: number }).port;
    const udp: UdpSocket = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(port, '127.0.0.1', () => r()));
    const tag: { networks: readonly string[] | undefined } = { networks: ['a'] };
    const close = server.attachSandbox({ udp, tcp }, tag);
    const client = createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    // Real sockets (the kernel is what is under test here); the 1 s bounds only bite on failure.
    const ask = (id: number): Promise<Buffer> => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timeout: no answer to query ${id} in 1000 ms`)), 1000);
      client.once('message', (m) => (clearTimeout(t), resolve(m)));
      client.send(buildQuery({ id, name: ['web'] }), port, '127.0.0.1');
    });
    /**
     * What a query finds once the sandbox is closed: a connected UDP socket gets the kernel's port
     * unreachable as ECONNREFUSED at once, so "nobody serves" is proven without waiting out a timeout.
     */
    const askClosed = (id: number): Promise<string> => new Promise((resolve, reject) => {
      const c = createSocket('udp4');
      const t = setTimeout(() => (c.close(), reject(new Error(`timeout: neither an answer nor a refusal to query ${id} in 1000 ms`))), 1000);
      const done = (v: string): void => (clearTimeout(t), c.close(), resolve(v));
      c.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
      c.once('message', () => done('answered'));
      c.connect(port, '127.0.0.1', () => c.send(buildQuery({ id, name: ['web'] })));
    });
    const lastA = (m: Buffer): string => [...m.subarray(m.length - 4)].join('.');
    try {
      assert.equal(server.attachedSandboxes, 1);
      assert.equal(lastA(await ask(1)), '10.1.0.100');
      tag.networks = ['b'];
      assert.equal(lastA(await ask(2)), '10.2.0.100');
      tag.networks = undefined;
      const refused = await ask(3);
      assert.equal(refused[3]! & 0x0f, 5, 'unknown networks → REFUSED');
      await close();
      assert.equal(server.attachedSandboxes, 0);
      assert.equal(await askClosed(4), 'ECONNREFUSED', 'closed: nobody serves the port any more');
    } finally {
      client.close();
      await close();
      await server.close();
    }
  });
});

describe('SandboxBinder via DnsSubsystem', () => {
  test('ensure() binds a task namespace once (concurrent callers share it); a namespace that goes is closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsagent-ns-'));
    let binds = 0;
    const bind = async (): Promise<{ udp: UdpSocket; tcp: Server }> => {
      binds++;
      const tcp = createServer();
      await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
      const udp = createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
      return { udp, tcp };
    };
    const g = new FakeGossip();
    const clock = new ManualClock(0);
    const s = new DnsSubsystem({
      nodeName: 'n1', prefix: 'mtest-n1-', gossip: g as unknown as GossipSubsystem, clock, log, exec: noExec,
      upstreams: [], netnsDir: dir, resyncMs: 3_600_000, bind,
      assignedNetworks: (id) => (id === 'abcdefabcdef' ? ['app'] : undefined),
    });
    await s.start();
    try {
      assert.equal(await s.ensureSandbox('other-ns'), false);
      writeFileSync(join(dir, 'mtest-n1-t-abcdefabcdef'), '');
      const [a, b] = await Promise.all([s.ensureSandbox('mtest-n1-t-abcdefabcdef'), s.ensureSandbox('mtest-n1-t-abcdefabcdef')]);
      assert.equal(a && b, true);
      // The background scan (on the simulated clock) finds it bound already: no second bind.
      await stepUntil(clock, 'a scan ran and went idle', () => s.sandboxes.view(clock.now()).bound.length === 1 && s.sandboxes.scans > 0, { stepMs: 1, maxMs: 5000 });
      assert.equal(binds, 1);
      assert.deepEqual(s.sandboxes.view(0).bound.map((x) => [x.netns, x.networks]), [['mtest-n1-t-abcdefabcdef', ['app']]]);
      // the record arrives: its networks win over the assignment's
      g.set(rec({ taskId: 'abcdefabcdefXYZ', networkName: 'front', node: 'n1' }), 'n1');
      assert.deepEqual(s.sandboxes.view(0).bound[0]!.networks, ['front']);
      rmSync(join(dir, 'mtest-n1-t-abcdefabcdef'));
      s.sandboxes.kick();
      await stepUntil(clock, 'the sandbox that went is closed', () => s.server.attachedSandboxes === 0, { stepMs: 1, maxMs: 5000 });
      assert.equal(s.sandboxes.view(clock.now()).bound.length, 0);
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('DNS after an agent restart: task namespaces are served once gossip has synced', () => {
  const bindCounter = () => {
    const binds: number[] = [];
    const bind = async (): Promise<{ udp: UdpSocket; tcp: Server }> => {
      const tcp = createServer();
      await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
      const udp = createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
      binds.push(1);
      return { udp, tcp };
    };
    return { binds, bind };
  };
  /** n1 restarted on `net1` next to a live n2 whose records have not arrived yet. */
  const restarted = () => {
    const g = new FakeGossip();
    g.joined.add('net1');
    g.membersList.push({ name: 'n2', addr: '10.99.1.2:7946', state: 'alive', incarnation: 1 });
    (g.core as { networkNodes: (net: string) => string[] }).networkNodes = (net) => (g.joined.has(net) ? ['n1', 'n2'] : []);
    (g as unknown as { hasJoined: boolean }).hasJoined = true;
    return g;
  };

  test('no socket in a task namespace until every live peer of its network shows up in the table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsagent-sync-'));
    writeFileSync(join(dir, 'mtest-n1-t-abcdefabcdef'), '');
    const clock = new ManualClock(0);
    const { binds, bind } = bindCounter();
    const g = restarted();
    const s = new DnsSubsystem({
      nodeName: 'n1', prefix: 'mtest-n1-', gossip: g as unknown as GossipSubsystem, clock, log, exec: noExec,
      upstreams: [], netnsDir: dir, resyncMs: 3_600_000, bind, syncTimeoutMs: 10_000,
    });
    await s.start();
    try {
      await stepUntil(clock, '3 s of waiting', () => clock.now() >= 3000, { stepMs: 100, maxMs: 5000 });
      assert.equal(binds.length, 0, 'served before the peer\'s records arrived (a lookup would be answered NXDOMAIN)');
      g.set(rec({ node: 'n2' }), 'n2');
      await stepUntil(clock, 'bound once synced', () => binds.length === 1, { stepMs: 50, maxMs: 2000 });
      assert.ok(clock.now() < 3400, `bound ${clock.now() - 3000} ms after the peer's records arrived`);
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a peer that never shows up delays serving by syncTimeoutMs at most; a node without peers serves at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsagent-sync2-'));
    writeFileSync(join(dir, 'mtest-n1-t-abcdefabcdef'), '');
    const clock = new ManualClock(0);
    const { binds, bind } = bindCounter();
    const s = new DnsSubsystem({
      nodeName: 'n1', prefix: 'mtest-n1-', gossip: restarted() as unknown as GossipSubsystem, clock, log, exec: noExec,
      upstreams: [], netnsDir: dir, resyncMs: 3_600_000, bind, syncTimeoutMs: 2000,
    });
    await s.start();
    try {
      await stepUntil(clock, 'bound after the bound', () => binds.length === 1, { stepMs: 100, maxMs: 5000 });
      assert.ok(clock.now() >= 2000 && clock.now() <= 2600, `bound at ${clock.now()} ms`);
    } finally {
      await s.stop();
    }
    const alone = new FakeGossip();
    alone.joined.add('net1');
    (alone as unknown as { hasJoined: boolean }).hasJoined = true;
    const c2 = new ManualClock(0);
    const b2 = bindCounter();
    const s2 = new DnsSubsystem({
      nodeName: 'n1', prefix: 'mtest-n1-', gossip: alone as unknown as GossipSubsystem, clock: c2, log, exec: noExec,
      upstreams: [], netnsDir: dir, resyncMs: 3_600_000, bind: b2.bind, syncTimeoutMs: 10_000,
    });
    await s2.start();
    try {
      await stepUntil(c2, 'bound at once', () => b2.binds.length === 1, { stepMs: 10, maxMs: 1000 });
      assert.ok(c2.now() <= 200, `a lone node waited ${c2.now()} ms`);
    } finally {
      await s2.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SandboxBinder retries on simulated time', () => {
  test('a failed bind is retried after 250 ms, then 500 ms (core/dns/sandbox-retry.ts), not by every scan', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dnsagent-retry-'));
    const clock = new ManualClock(0);
    const attempts: number[] = [];
    let failing = 2;
    const bind = async (): Promise<{ udp: UdpSocket; tcp: Server }> => {
      attempts.push(clock.now());
      if (failing-- > 0) throw new Error('namespace not plumbed yet');
      const tcp = createServer();
      await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', () => r()));
      const udp = createSocket('udp4');
      await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
      return { udp, tcp };
    };
    writeFileSync(join(dir, 'mtest-n1-t-abcdefabcdef'), '');
    const s = new DnsSubsystem({
      nodeName: 'n1', prefix: 'mtest-n1-', gossip: new FakeGossip() as unknown as GossipSubsystem, clock, log, exec: noExec,
      upstreams: [], netnsDir: dir, resyncMs: 3_600_000, bind,
    });
    await s.start();
    try {
      await stepUntil(clock, 'bound after two failures', () => s.sandboxes.has('mtest-n1-t-abcdefabcdef'), { stepMs: 5, maxMs: 5000 });
      assert.deepEqual(attempts.map((t, i) => (i === 0 ? 0 : t - attempts[i - 1]!)), [0, 250, 500], `attempts at ${attempts}`);
      assert.equal(s.sandboxes.bindFailures, 2);
      assert.deepEqual(s.sandboxes.view(clock.now()).failing, []);
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
