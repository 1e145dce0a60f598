/**
 * PROXY protocol over IPv6 (issue 19 §6 on a dual-stack / IPv6-only underlay): the agent serves a
 * proxied port on the node's advertised address AND on each of its IPv6 underlay addresses; a
 * client over IPv6 gets a header naming its IPv6 address (v1 `PROXY TCP6`, v2 AF_INET6); an IPv6
 * address that goes away at runtime loses its listeners, one that comes gets them; the host
 * tables (`ip` and `ip6`, one shared set) leave proxied ports out of their DNAT (golden).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { decodeProxyHeader, type ProxyConnection } from '../../../src/core/proxy-protocol.js';
import { renderHostIngress } from '../../../src/agent/lb/plan.js';
import { dnatPortsOf, ProxyPorts, proxyAddresses, proxyPortsOf } from '../../../src/agent/lb/proxy-ports.js';
import type { IngressPublish } from '../../../src/core/lb/model.js';

const pub = (publishedPort: number, over: Partial<IngressPublish> = {}): IngressPublish => ({ service: `s${publishedPort}`, publishedPort, proto: 'tcp', targetPort: 80, policy: 'cluster', backends: [], ...over });

test('proxyAddresses: the advertised address first, then the other IPv6 underlay addresses once each, sorted', () => {
  assert.deepEqual(proxyAddresses('10.99.1.2', []), ['10.99.1.2'], 'IPv4 underlay: as before');
  assert.deepEqual(proxyAddresses('10.99.1.2', ['fd99::3', 'fd99::2', 'fd99::3']), ['10.99.1.2', 'fd99::2', 'fd99::3'], 'dual');
  assert.deepEqual(proxyAddresses('fd99::2', ['fd99::2']), ['fd99::2'], 'IPv6-only: the advertised address is in underlay6 too');
  assert.deepEqual(proxyAddresses('fd99::2', ['fd99::9', 'fd99::2']), ['fd99::2', 'fd99::9']);
});

test('host tables (golden): a proxied TCP port is left out of the shared set, so neither family DNATs it', () => {
  const ingress = [pub(8080), pub(8090, { proxyProtocol: 'v1' }), pub(8090, { proto: 'udp', service: 'u' }), pub(8091, { proxyProtocol: 'v2' })];
  const proxied = proxyPortsOf(ingress);
  assert.deepEqual([...proxied], [[8090, 'v1'], [8091, 'v2']]);
  assert.deepEqual(dnatPortsOf(ingress, proxied), [{ proto: 'tcp', port: 8080 }, { proto: 'udp', port: 8090 }]);
  assert.equal(renderHostIngress('10.99.1.2', dnatPortsOf(ingress, proxied), ['fd99:6c61:6200::2']), `add table ip meshd-ingress
delete table ip meshd-ingress
table ip meshd-ingress {
\tset published {
\t\ttype inet_proto . inet_service
\t\telements = { tcp . 8080, udp . 8090 }
\t}
\tchain pre {
\t\ttype nat hook prerouting priority -100; policy accept;
\t\tip daddr 10.99.1.2 meta l4proto . th dport @published dnat to 172.31.255.2
\t}
\tchain out {
\t\ttype nat hook output priority -100; policy accept;
\t\tip daddr 10.99.1.2 meta l4proto . th dport @published dnat to 172.31.255.2
\t}
}
add table ip6 meshd-ingress
delete table ip6 meshd-ingress
table ip6 meshd-ingress {
\tset published {
\t\ttype inet_proto . inet_service
\t\telements = { tcp . 8080, udp . 8090 }
\t}
\tchain pre {
\t\ttype nat hook prerouting priority -100; policy accept;
\t\tip6 daddr fd99:6c61:6200::2 meta l4proto . th dport @published dnat ip6 to fd6d:6573:6864:fffe::2
\t}
\tchain out {
\t\ttype nat hook output priority -100; policy accept;
\t\tip6 daddr fd99:6c61:6200::2 meta l4proto . th dport @published dnat ip6 to fd6d:6573:6864:fffe::2
\t}
}
`);
  // A node without proxied ports renders exactly what it did before (the filter keeps every port).
  const plain = [pub(8080), pub(53, { proto: 'udp' })];
  assert.equal(renderHostIngress('10.99.1.2', dnatPortsOf(plain, proxyPortsOf(plain)), ['fd99::2']), renderHostIngress('10.99.1.2', [{ proto: 'tcp', port: 8080 }, { proto: 'udp', port: 53 }], ['fd99::2']));
});

/** An upstream that records the PROXY header of each connection and closes it. */
async function upstream(): Promise<{ server: Server; port: number; headers: ProxyConnection[]; raw: Buffer[] }> {
  const headers: ProxyConnection[] = [];
  const raw: Buffer[] = [];
  const server = createServer((s: Socket) => {
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const h = decodeProxyHeader(buf);
      if (h.status === 'ok') {
        if (h.connection) headers.push(h.connection);
        raw.push(buf.subarray(0, h.length));
        s.end(`${h.version}\n`);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, headers, raw };
}

/** One connection to host:port: the upstream's answer, or the error code (ECONNREFUSED...). */
function dial(host: string, port: number): Promise<{ answer?: string; code?: string; local?: number }> {
  return new Promise((resolve) => {
    const c = connect({ host, port });
    let out = '';
    let local: number | undefined;
    c.on('connect', () => (local = c.localPort));
    c.on('data', (d: Buffer) => (out += d.toString()));
    c.on('end', () => resolve({ answer: out.trim(), ...(local !== undefined ? { local } : {}) }));
    c.on('error', (e: NodeJS.ErrnoException) => resolve({ code: e.code ?? e.message }));
  });
}

test('listeners on the IPv6 underlay addresses: TCP6 / AF_INET6 headers naming the client; an address gone loses its listener', async () => {
  const up = await upstream();
  // The published port is also the upstream's port (the proxy connects to upstreamHost:published).
  const port = up.port;
  const pp = new ProxyPorts({ host: '127.0.0.2', upstreamHost: '127.0.0.1', maxConnections: 10, idleTimeoutMs: 2000 });
  try {
    // 127.0.0.1 holds the upstream on `port`: serve on 127.0.0.2 (the "IPv4 underlay") and ::1 (an "IPv6 underlay address").
    assert.deepEqual([...(await pp.open(new Map([[port, 'v1']]), ['::1'])).entries()], []);
    const st = pp.status() as { listeners: unknown[]; underlay6Listeners?: unknown[] };
    assert.deepEqual(st.listeners, [{ port, version: 'v1', connections: 0 }], 'the advertised address: as on an IPv4 node');
    assert.deepEqual(st.underlay6Listeners, [{ host: '::1', port, version: 'v1', connections: 0 }]);

    const v1 = await dial('::1', port);
    assert.equal(v1.answer, 'v1', JSON.stringify(v1));
    assert.deepEqual(up.headers.at(-1), { source: { address: '::1', port: v1.local }, destination: { address: '::1', port } }, 'v1 names the IPv6 client and the address it dialled');
    assert.equal(up.raw.at(-1)!.toString(), `PROXY TCP6 ::1 ::1 ${v1.local} ${port}\r\n`);
    const v4 = await dial('127.0.0.2', port);
    assert.equal(v4.answer, 'v1');
    assert.equal(up.raw.at(-1)!.toString(), `PROXY TCP4 127.0.0.1 127.0.0.2 ${v4.local} ${port}\r\n`, 'IPv4 unchanged');

    await pp.open(new Map([[port, 'v2']]), ['::1']);
    const v2 = await dial('::1', port);
    assert.equal(v2.answer, 'v2', JSON.stringify(v2));
    assert.deepEqual(up.headers.at(-1), { source: { address: '::1', port: v2.local }, destination: { address: '::1', port } });
    assert.equal(up.raw.at(-1)![13], 0x21, 'v2: AF_INET6 over STREAM');
    assert.equal(up.raw.at(-1)!.length, 16 + 36, 'v2: two IPv6 addresses and two ports');

    // The IPv6 underlay address went away (periodic re-read): its listener closes, the IPv4 one stays.
    await pp.closeStale(new Map([[port, 'v2']]), []);
    assert.equal((await dial('::1', port)).code, 'ECONNREFUSED');
    assert.equal((await dial('127.0.0.2', port)).answer, 'v2');
    assert.equal((pp.status() as { underlay6Listeners?: unknown[] }).underlay6Listeners, undefined, 'no IPv6 listeners: the status is the IPv4 one');
    // ...and came back: served again.
    assert.equal((await pp.open(new Map([[port, 'v2']]), ['::1'])).size, 0);
    assert.equal((await dial('::1', port)).answer, 'v2');
    // The port unpublished: every address closes.
    await pp.closeStale(new Map(), ['::1']);
    assert.equal((await dial('::1', port)).code, 'ECONNREFUSED');
    assert.equal((await dial('127.0.0.2', port)).code, 'ECONNREFUSED');
    assert.equal(pp.stats.accepted, 5);
  } finally {
    await pp.closeAll();
    await new Promise<void>((r) => up.server.close(() => r()));
  }
});

test('an IPv6 address that cannot be bound is reported by port, naming the address; the others are served; it clears when the address goes', async () => {
  const pp = new ProxyPorts({ host: '127.0.0.2', upstreamHost: '127.0.0.1', maxConnections: 10, idleTimeoutMs: 1000 });
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.2', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  try {
    // fd00:dead::1 is on no interface here: EADDRNOTAVAIL
    const failed = await pp.open(new Map([[port, 'v1']]), ['fd00:dead::1']);
    assert.deepEqual([...failed.keys()], [port]);
    assert.match(ProxyPorts.failure(failed).message, new RegExp(`fd00:dead::1:${port}: .*EADDRNOTAVAIL`));
    const st = pp.status() as { listeners: unknown[]; failed: Record<string, string> };
    assert.deepEqual(st.listeners, [{ port, version: 'v1', connections: 0 }]);
    assert.match(st.failed[port]!, /fd00:dead::1/);
    await pp.closeStale(new Map([[port, 'v1']]), []);
    assert.deepEqual((pp.status() as { failed: object }).failed, {}, 'the address is gone: no failure left');
    assert.deepEqual((pp.status() as { listeners: unknown[] }).listeners, [{ port, version: 'v1', connections: 0 }]);
  } finally {
    await pp.closeAll();
  }
});
