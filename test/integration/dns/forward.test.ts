/**
 * Forwarding to a stub upstream on 127.0.0.1 (never the internet): ID remapping, TCP for TCP queries,
 * per-query timeout, and the slow-upstream case (issue 6 acceptance, ARCHITECTURE §4 case 15): with an
 * upstream that takes 5 s, internal names still answer in < 10 ms while forwards pile up to their bound
 * and the excess gets SERVFAIL at once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import DNS from 'dns2';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { RCODE } from '../../../src/core/dns/wire.js';
import { parseResolvConf } from '../../../src/adapters/dns-server/forwarder.js';
import { UDP_PATHS } from './paths.js';
import { DnsServer } from '../../../src/adapters/dns-server/server.js';
import { buildQuery } from '../../unit/dns/helpers.js';
import { askTcp, startStubUpstream, UdpClient, type StubUpstream } from './stub.js';

const { Packet } = DNS;
const rcodeOf = (b: Buffer): number => b[3]! & 0x0f;

function registry(): DnsRegistry {
  const r = new DnsRegistry();
  r.upsertService({ name: 'web', network: 'default', mode: 'vip', vip: '10.9.0.2' }, 0);
  return r;
}

for (const udpPath of UDP_PATHS) describe(`dns forwarding (udp ${udpPath})`, () => {
  let stub: StubUpstream;
  const servers: DnsServer[] = [];
  const clients: UdpClient[] = [];
  const start = async (opts: { maxPendingForwards?: number; forwardTimeoutMs?: number }): Promise<{ server: DnsServer; port: number; client: UdpClient }> => {
    const server = new DnsServer({ udp: udpPath, registry: registry(), listen: [{ address: '127.0.0.1', port: 0 }], upstreams: [{ address: '127.0.0.1', port: stub.port }], ...opts });
    servers.push(server);
    const [{ port }] = (await server.start()) as [{ port: number; address: string }];
    const client = await UdpClient.open(port);
    clients.push(client);
    return { server, port, client };
  };
  before(async () => {
    stub = await startStubUpstream(5000);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.close();
    await stub?.close();
  });

  test('unknown names are forwarded with a remapped ID and come back with the client’s ID', async () => {
    const { client } = await start({});
    const reply = await client.ask(buildQuery({ id: 0x0102, name: ['Fast', 'example'] }));
    const p = Packet.parse(reply);
    assert.equal(p.header.id, 0x0102);
    assert.equal((p.answers[0] as unknown as { address: string }).address, '192.0.2.1');
    const seen = stub.seen.filter((s) => s.name === 'fast.example');
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.tcp, false);
    const nx = await client.ask(buildQuery({ id: 0x0103, name: ['nothing', 'example'] }));
    assert.equal(rcodeOf(nx), RCODE.NXDOMAIN);
  });

  test('a burst mixing local answers and forwards: each query answered once, with its own ID and answer', async () => {
    const { server, client } = await start({});
    assert.deepEqual({ path: server.udpReport().path, sockets: server.udpReport().sockets }, { path: udpPath, sockets: { native: udpPath === 'native' ? 1 : 0, js: udpPath === 'js' ? 1 : 0 } });
    // Sent without waiting: the native path gets them in batches, answers some in the batch (local) and
    // some after it (forwards, sent one by one to the address kept for each).
    const asks = Array.from({ length: 240 }, (_, i) => {
      const id = 0x4000 + i;
      const local = i % 3 !== 0;
      return client.ask(buildQuery({ id, name: local ? ['web'] : ['fast', 'example'] }), 5000).then((b) => ({ id, local, b }));
    });
    for (const { id, local, b } of await Promise.all(asks)) {
      const p = Packet.parse(b);
      assert.equal(p.header.id, id);
      assert.equal((p.answers[0] as unknown as { address: string }).address, local ? '10.9.0.2' : '192.0.2.1', `id ${id}`);
    }
    const s = server.stats();
    assert.equal(s.queries.udp, 240);
    assert.equal(s.forwards.answered, 80);
    assert.deepEqual(s.drops, {});
  });

  test('a TCP query is forwarded over TCP and returns the whole answer; UDP relays the TC reply', async () => {
    const { port, client } = await start({});
    const udp = Packet.parse(await client.ask(buildQuery({ id: 7, name: ['big', 'example'] })));
    assert.equal(udp.header.tc, 1);
    const tcp = Packet.parse(await askTcp(port, buildQuery({ id: 8, name: ['big', 'example'] })));
    assert.equal(tcp.header.id, 8);
    assert.equal(tcp.answers.length, 100);
    assert.ok(stub.seen.some((s) => s.name === 'big.example' && s.tcp));
  });

  test('per-query timeout → SERVFAIL (not a client-side timeout)', async () => {
    const { server, client } = await start({ forwardTimeoutMs: 300 });
    const t0 = performance.now();
    const r = await client.ask(buildQuery({ id: 9, name: ['slow', 'example'] }), 3000);
    const dt = performance.now() - t0;
    assert.equal(rcodeOf(r), RCODE.SERVFAIL);
    assert.ok(dt >= 250 && dt < 2000, `took ${dt} ms`);
    assert.equal(server.forwarder.stats.timeouts, 1);
    assert.equal(server.stats().pending, 0);
  });

  test('slow upstream (5 s): pending bounded, excess SERVFAIL fast, internal names < 10 ms', { timeout: 30_000 }, async () => {
    const BOUND = 20;
    const { server, client } = await start({ maxPendingForwards: BOUND, forwardTimeoutMs: 8000 });
    const slow: Promise<{ rcode: number; ms: number }>[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = performance.now();
      slow.push(client.ask(buildQuery({ id: 1000 + i, name: ['slow', 'example'] }), 9000).then((b) => ({ rcode: rcodeOf(b), ms: performance.now() - t0 }), () => ({ rcode: -1, ms: performance.now() - t0 })));
    }
    // Internal names while the forwards are stuck (once all 100 slow queries reached the server).
    for (let i = 0; i < 200 && server.stats().forwards.overflow + server.stats().pending < 100; i++) await new Promise((r) => setTimeout(r, 10));
    const lat: number[] = [];
    const before = server.stats().latency;
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const r = await client.ask(buildQuery({ id: 3000 + i, name: ['web'] }));
      lat.push(performance.now() - t0);
      assert.equal(rcodeOf(r), 0);
      assert.equal(r.readUInt16BE(6), 1);
    }
    const afterLat = server.stats().latency;
    lat.sort((a, b) => a - b);
    const p50 = lat[100]!;
    const p90 = lat[180]!;
    const p99 = lat[198]!;
    // Client-measured round trips on a shared 2-core machine (other suites running): the median and p90
    // must be < 10 ms; the rare tail is the test process itself being descheduled, so it is only logged.
    // Server-side (receipt → reply, the server's latency histogram): ≥ 95% ≤ 10 ms and ≥ 90% ≤ 1 ms.
    console.log(`internal names while forwards are stuck: p50 ${p50.toFixed(2)} p90 ${p90.toFixed(2)} p99 ${p99.toFixed(2)} ms`);
    assert.ok(p50 < 2 && p90 < 10, `internal p50 ${p50.toFixed(2)} p90 ${p90.toFixed(2)} p99 ${p99.toFixed(2)} ms`);
    const upTo = (counts: number[], i: number): number => counts.slice(0, i + 1).reduce((a, b) => a + b, 0);
    assert.equal(afterLat.count - before.count, 200);
    // buckets: index 4 = ≤ 1 ms, index 7 = ≤ 10 ms. Not "every": under heavy load from other suites a V8
    // scavenge waiting on descheduled GC helper threads can stretch one synchronous handler call past 10 ms.
    assert.ok(upTo(afterLat.counts, 7) - upTo(before.counts, 7) >= 190, 'server-side: ≥ 95% of internal answers ≤ 10 ms');
    assert.ok(upTo(afterLat.counts, 4) - upTo(before.counts, 4) >= 180, 'server-side: ≥ 90% of internal answers ≤ 1 ms');
    const s = server.stats();
    assert.equal(s.pending, BOUND);
    assert.equal(s.forwards.overflow, 100 - BOUND);
    // The excess already got SERVFAIL, fast.
    const settled = await Promise.all(slow.slice(BOUND));
    for (const x of settled) {
      assert.equal(x.rcode, RCODE.SERVFAIL);
      assert.ok(x.ms < 1000, `excess SERVFAIL took ${x.ms} ms`);
    }
    // The bounded ones complete with the upstream's answer after ~5 s.
    const done = await Promise.all(slow.slice(0, BOUND));
    for (const x of done) {
      assert.equal(x.rcode, 0);
      assert.ok(x.ms >= 4500, `answered after ${x.ms} ms`);
    }
    assert.equal(server.stats().pending, 0);
  });

  test('close() with forwards pending fails them and releases everything', async () => {
    const { server, client } = await start({ forwardTimeoutMs: 8000 });
    const p = client.ask(buildQuery({ id: 77, name: ['slow', 'example'] }), 3000).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.stats().pending, 1);
    await server.close();
    assert.equal(server.stats().pending, 0);
    const r = await p;
    assert.ok(r instanceof Error); // server gone: no reply is sent while closing
  });

  test('debug(): registry answers are explained; other names are really forwarded and the upstream named', async () => {
    const { server } = await start({});
    const local = await server.debug(['default'], 'web', 1);
    assert.equal(local.outcome, 'answer');
    assert.equal(local.upstream, undefined);
    assert.deepEqual(local.records, [{ type: 1, data: '10.9.0.2' }]);
    assert.equal(local.sources[0]!.name, 'web');
    const fwd = await server.debug(['default'], 'fast.example', 1);
    assert.equal(fwd.outcome, 'forward');
    assert.equal(fwd.upstream?.address, '127.0.0.1');
    assert.equal(fwd.upstream?.port, stub.port);
    assert.equal(fwd.upstream?.rcode, 'NOERROR');
    assert.match(fwd.upstream!.answers[0]!, /^fast\.example 30 1 192\.0\.2\.1$/);
    const nx = await server.debug(['default'], 'nothing.example', 1);
    assert.equal(nx.upstream?.rcode, 'NXDOMAIN');
    const none = new DnsServer({ udp: udpPath, registry: registry(), listen: [], upstreams: [] });
    const r = await none.debug(['default'], 'fast.example', 1);
    assert.equal(r.upstream?.note, 'no upstream resolvers configured');
    await none.close();
  });

  test('resolv.conf parsing', () => {
    assert.deepEqual(parseResolvConf('# c\nsearch x\nnameserver 10.0.0.1\nnameserver fe80::1%eth0 # c\nnameserver 10.0.0.1\nnameserver bogus!\noptions ndots:0\n'), ['10.0.0.1', 'fe80::1']);
  });
});
