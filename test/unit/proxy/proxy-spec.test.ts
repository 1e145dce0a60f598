/**
 * `proxy-protocol=v1|v2` from the user to the agent: the --publish key, the Compose extension
 * `x-meshd-proxy-protocol`, the manager's refusals (mode host, policy local, udp, no published
 * port) with the field named, the endpoint record, the LB plan (ingressOf → proxyPortsOf), and the
 * agent's listener set (opened / version switched / closed; a bind failure reported per port).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { MeshError } from '../../../src/core/errors.js';
import { parsePublish } from '../../../src/cli/service-flags.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { parseCompose, translateStack } from '../../../src/core/compose/index.js';
import { decodeEndpoint, encodeEndpoint, type EndpointRecord } from '../../../src/core/endpoints.js';
import { compile } from '../../../src/core/lb/model.js';
import { ingressOf } from '../../../src/agent/lb/plan.js';
import { ProxyPorts, proxyPortsOf } from '../../../src/agent/lb/proxy-ports.js';

const badArg = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message));
const spec = (port: Record<string, unknown>) => parseServiceSpec({ name: 'web', image: 'meshd/nginx:1', ports: [port] });

test('--publish proxy-protocol=v1|v2 (long form only); anything else refused', () => {
  assert.deepEqual(parsePublish('published=8080,target=80,proxy-protocol=v2'), { published: 8080, target: 80, proto: 'tcp', mode: 'ingress', policy: 'cluster', proxyProtocol: 'v2' });
  badArg(() => parsePublish('published=8080,target=80,proxy-protocol=v3'), /proxy-protocol must be v1 or v2, got "v3"/);
});

test('the manager refuses it where no proxy runs, naming the field', () => {
  assert.equal(spec({ published: 8080, target: 80, proxyProtocol: 'v1' }).ports[0]!.proxyProtocol, 'v1');
  const field = /^service spec ports\.0\.proxyProtocol: /;
  badArg(() => spec({ published: 8080, target: 80, mode: 'host', policy: 'local', proxyProtocol: 'v1' }), new RegExp(field.source + 'mode host keeps the client address'));
  badArg(() => spec({ published: 8080, target: 80, policy: 'local', proxyProtocol: 'v2' }), new RegExp(field.source + 'policy local keeps the client address'));
  badArg(() => spec({ published: 8080, target: 80, proto: 'udp', proxyProtocol: 'v2' }), new RegExp(field.source + 'only TCP'));
  badArg(() => spec({ target: 80, proxyProtocol: 'v2' }), new RegExp(field.source + 'needs a published port'));
  badArg(() => spec({ published: 8080, target: 80, proxyProtocol: 'v9' }), /ports\.0\.proxyProtocol/);
  try {
    spec({ published: 8080, target: 80, policy: 'local', proxyProtocol: 'v2' });
  } catch (e) {
    assert.equal((e as MeshError).details?.field, 'ports.0.proxyProtocol');
  }
});

test('compose: x-meshd-proxy-protocol on a long-syntax port', () => {
  const file = (v: string, extra = '') => `services:\n  web:\n    image: meshd/nginx:1\n    ports:\n      - target: 80\n        published: 8080\n${extra}        x-meshd-proxy-protocol: ${v}\n`;
  const p = translateStack('s', parseCompose(file('v2')));
  assert.deepEqual(p.services[0]!.ports, [{ published: 8080, target: 80, proto: 'tcp', mode: 'ingress', policy: 'cluster', proxyProtocol: 'v2' }]);
  badArg(() => parseCompose(file('v3')), /^services\.web\.ports\[0\]\.x-meshd-proxy-protocol: expected one of v1, v2, got "v3"$/);
  badArg(() => translateStack('s', parseCompose(file('v1', '        mode: host\n'))), /proxyProtocol: mode host keeps the client address/);
});

test('endpoint record carries it; the LB plan hands it to the listener set; kernel frontends unchanged', () => {
  const rec: EndpointRecord = {
    v: 1, taskId: 't1', taskName: 'web.1', serviceId: 'svcweb', serviceName: 'web', network: 'ingress', networkName: 'ingress',
    ip: '10.255.0.5', mac: '02:42:0a:ff:00:05', node: 'n1', nodeIp: '10.99.1.1', vip: null, endpointMode: 'vip', aliases: [],
    ports: [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress', policy: 'cluster', proxyProtocol: 'v1' }, { proto: 'tcp', target: 81, published: 8081 }, { proto: 'udp', target: 53, published: 8080 }],
    state: 'running',
  };
  const d = decodeEndpoint(encodeEndpoint(rec));
  assert.ok(d.ok);
  assert.deepEqual(d.record, rec);
  const v3 = new TextEncoder().encode(JSON.stringify({ ...rec, ports: [{ proto: 'tcp', target: 80, published: 8080, proxyProtocol: 'v3' }] }));
  assert.equal(decodeEndpoint(v3).ok, false, 'a record from the network with an unknown version is refused (counted by the LB)');
  const pubs = ingressOf([rec], 'n1');
  assert.deepEqual([...proxyPortsOf(pubs)], [[8080, 'v1']]);
  // The ingress sandbox's frontends are the same with or without the header.
  const plain = ingressOf([{ ...rec, ports: rec.ports.map(({ proxyProtocol: _, ...p }) => p) }], 'n1');
  assert.deepEqual([...compile({ services: [], ingress: pubs }).values()], [...compile({ services: [], ingress: plain }).values()]);
  badArg(() => compile({ services: [], ingress: [{ ...pubs[0]!, policy: 'local' }] }), /proxyProtocol/);
});

test('listener set: open, switch version, close stale; a port in use is reported, the others served', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.2', r));
  const busy = (blocker.address() as AddressInfo).port;
  const free = createServer();
  await new Promise<void>((r) => free.listen(0, '127.0.0.2', r));
  const port = (free.address() as AddressInfo).port;
  await new Promise<void>((r) => free.close(() => r()));
  const pp = new ProxyPorts({ host: '127.0.0.2', upstreamHost: '127.0.0.1', maxConnections: 10, idleTimeoutMs: 1000 });
  try {
    const failed = await pp.open(new Map([[port, 'v1'], [busy, 'v2']]));
    assert.deepEqual([...failed.keys()], [busy]);
    assert.match(ProxyPorts.failure(failed).message, new RegExp(`127\\.0\\.0\\.2:${busy}: .*EADDRINUSE`));
    assert.deepEqual((pp.status() as { listeners: unknown[] }).listeners, [{ port, version: 'v1', connections: 0 }]);
    assert.deepEqual((await pp.open(new Map([[port, 'v2']]))).size, 0);
    assert.deepEqual((pp.status() as { listeners: unknown[] }).listeners, [{ port, version: 'v2', connections: 0 }]);
    await pp.closeStale(new Map());
    assert.deepEqual(pp.status(), { listeners: [], failed: {}, stats: pp.stats, maxConnections: 10, idleTimeoutMs: 1000 });
  } finally {
    await pp.closeAll();
    await new Promise<void>((r) => blocker.close(() => r()));
  }
});
