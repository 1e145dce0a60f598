import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compactAllowed, decodeEndpoint, encodeEndpoint, endpointEncodingOf, type EndpointRecord } from '../../../src/core/endpoints.js';
import { COMPACT_VERSION, readCompact, writeCompact } from '../../../src/core/endpoint-compact.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';

/** What agents write: 24-hex ids (manager newId), `service.slot` names, derived MACs. */
const base: EndpointRecord = {
  v: 1, taskId: '5f0c2a9e1b7d4c3a8e6f1029', taskName: 'probe.3', serviceId: 'a1b2c3d4e5f60718293a4b5c', serviceName: 'probe',
  network: '0d1e2f3a4b5c6d7e8f901a2b', networkName: 'app', ip: '10.77.0.5', mac: macFromIp('10.77.0.5'), node: 'n2',
  nodeIp: '10.99.0.2', vip: '10.77.0.2', endpointMode: 'vip', aliases: [], ports: [], state: 'running',
};
const withPorts: EndpointRecord = {
  ...base, aliases: ['web', 'www'],
  ports: [
    { proto: 'tcp', target: 80, published: 8080, mode: 'ingress', policy: 'cluster', proxyProtocol: 'v2' },
    { proto: 'udp', target: 53 },
    { proto: 'tcp', target: 443, published: 443, mode: 'host', policy: 'local' },
  ],
};

/** Every optional field and every enum value appears in at least one row. */
const cases: Array<[string, EndpointRecord]> = [
  ['agent record', base],
  ['ports, aliases', withPorts],
  ['starting, dnsrr, no VIP', { ...base, state: 'starting', endpointMode: 'dnsrr', vip: null }],
  ['draining', { ...base, state: 'draining' }],
  ['dual stack', { ...base, ip6: 'fd00:77::5', vip6: 'fd00:77::2' }],
  ['IPv6 underlay', { ...base, nodeIp: 'fd00:99::2' }],
  ['mac not derived from ip', { ...base, mac: 'aa:bb:cc:dd:ee:0f' }],
  ['task name not service.slot', { ...base, taskName: 'probe-x' }],
  ['non-hex ids, unicode names', { ...base, taskId: 't1', serviceId: 'svc-ü', network: 'net1', node: 'nœud' }],
  ['odd-length hex id stays text', { ...base, taskId: 'abc' }],
  ['upper-case hex stays text', { ...base, taskId: 'ABCDEF' }],
  ['lb: every field', { ...base, lb: { algorithm: 'source-hash', locality: 'zone', weight: 10000 }, zone: 'eu-1' }],
  ['lb: round-robin, node', { ...base, lb: { algorithm: 'round-robin', locality: 'node' } }],
  ['lb: random, none, weight 1', { ...base, lb: { algorithm: 'random', locality: 'none', weight: 1 } }],
  ['lb: empty', { ...base, lb: {} }],
  ['64 ports, 32 aliases', { ...base, aliases: Array.from({ length: 32 }, (_, i) => `a${i}`), ports: Array.from({ length: 64 }, (_, i) => ({ proto: 'tcp' as const, target: 1000 + i, published: 65535 })) }],
];

test('endpoint record: compact and JSON both round-trip exactly; compact starts with its version byte', () => {
  for (const [name, r] of cases) {
    for (const encoding of ['json', 'compact'] as const) {
      const bytes = encodeEndpoint(r, encoding);
      assert.equal(endpointEncodingOf(bytes), encoding, `${name} ${encoding}`);
      const d = decodeEndpoint(bytes);
      assert.ok(d.ok, `${name} ${encoding}: ${d.ok ? '' : d.reason}`);
      assert.deepEqual(d.record, r, `${name} ${encoding}`);
    }
    assert.equal(encodeEndpoint(r, 'compact')[0], COMPACT_VERSION);
  }
});

test('endpoint record: JSON stays the default encoding, and a JSON record written by an older agent still decodes', () => {
  assert.equal(encodeEndpoint(base)[0], 0x7b);
  const old = new TextEncoder().encode(JSON.stringify(base));
  assert.deepEqual(decodeEndpoint(old), { ok: true, record: base });
});

test('endpoint record: a record the schema accepts but compact cannot pack exactly is written as JSON', () => {
  for (const r of [{ ...base, ip: '10.77.0.05' }, { ...base, vip: '10.77.0.02' }, { ...base, ip6: 'fd00:77:0:0::5' }, { ...base, vip6: 'fd00:0::2' }]) {
    const bytes = encodeEndpoint(r, 'compact');
    assert.equal(endpointEncodingOf(bytes), 'json', JSON.stringify(r));
    assert.deepEqual(decodeEndpoint(bytes), { ok: true, record: r });
  }
});

test('endpoint record: compact bytes the schema refuses are refused like JSON ones (same validation)', () => {
  // port 0 and a 65-char task id: they pack (the writer does not validate twice) but the schema refuses them
  for (const r of [{ ...base, ports: [{ proto: 'tcp' as const, target: 0 }] }, { ...base, taskId: 'x'.repeat(65) }]) {
    const patched = writeCompact(r)!;
    assert.equal(readCompact(patched).ok, true);
    assert.deepEqual(decodeEndpoint(patched), { ok: false, reason: 'endpoint-schema' });
  }
});

test('endpoint record: malformed compact bytes are refused with a reason', () => {
  const good = encodeEndpoint(withPorts, 'compact');
  const rows: Array<[string, Uint8Array, string]> = [
    ['version only', new Uint8Array([COMPACT_VERSION]), 'truncated'],
    ['trailing byte', new Uint8Array([...good, 0]), 'trailing'],
    ['unknown flag bit', new Uint8Array([COMPACT_VERSION, 0x80, 0x10, ...good.subarray(3)]), 'flags'],
    ['state 3', new Uint8Array([COMPACT_VERSION, good[1]! | 0x06, ...good.subarray(2)]), 'enum'],
    ['endless varint', new Uint8Array([COMPACT_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff]), 'varint'],
    ['invalid UTF-8', new Uint8Array([COMPACT_VERSION, 0, 2 << 1, 0xc3, 0x28]), 'utf8'],
    ['lying length', new Uint8Array([COMPACT_VERSION, 0, 0x7e, 1, 2]), 'truncated'],
  ];
  for (const [name, bytes, reason] of rows) {
    assert.deepEqual(readCompact(bytes), { ok: false, reason }, name);
    assert.equal(decodeEndpoint(bytes).ok, false, name);
  }
  for (let n = 0; n < good.length; n++) assert.equal(decodeEndpoint(good.subarray(0, n)).ok, false, `truncated to ${n}`);
});

test('endpoint record fuzz: random, truncated and bit-flipped bytes never throw; what decodes is a valid record', () => {
  let seed = 0x8b;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) & 255;
  const goods = cases.map(([, r]) => encodeEndpoint(r, 'compact'));
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    let b: Uint8Array;
    const g = goods[i % goods.length]!;
    switch (i % 4) {
      case 0: b = Uint8Array.from({ length: rnd() % 120 }, rnd); if (b.length) b[0] = COMPACT_VERSION; break;
      case 1: b = g.subarray(0, rnd() % g.length); break;
      case 2: { b = Uint8Array.from(g); const at = rnd() % b.length; b[at] = b[at]! ^ (1 << (rnd() % 8)); break; }
      default: b = Uint8Array.from(g); for (let k = 0; k < 4; k++) b[1 + (rnd() % (b.length - 1))] = rnd(); break;
    }
    const d = decodeEndpoint(b);
    if (d.ok) {
      decoded++;
      // whatever decodes re-encodes to a record that decodes the same
      assert.deepEqual(decodeEndpoint(encodeEndpoint(d.record, 'compact')), d);
    } else assert.match(d.reason, /^endpoint-(compact|schema|json)$/);
  }
  assert.ok(decoded > 0 && decoded < 20_000, `some flipped records still decode (${decoded})`);
});

test('endpoint record size, bytes per record (issue 18 §1: the gossip send budget is what limits churn)', () => {
  const churn: EndpointRecord = { ...base, taskId: 'bench-churn-123', taskName: 'churn.bc123', serviceName: 'churn', node: 'n2-churn' };
  const rows: Array<[string, EndpointRecord, number, number]> = [
    // name, record, JSON bytes, compact bytes (exact: a change of encoding shows here)
    ['agent record, no ports', base, 339, 71],
    ['agent record, 3 ports, 2 aliases', withPorts, 555, 92],
    ['dual stack', { ...base, ip6: 'fd00:77::5', vip6: 'fd00:77::2' }, 378, 103],
    ['bench churn record', churn, 340, 84],
  ];
  const got = rows.map(([name, r]) => [name, encodeEndpoint(r).length, encodeEndpoint(r, 'compact').length] as const);
  console.log(got.map(([n, j, c]) => `${n}: JSON ${j} B, compact ${c} B (${(j / c).toFixed(1)}×)`).join('\n'));
  assert.deepEqual(got, rows.map(([name, , j, c]) => [name, j, c]));
});

test('compactAllowed: only when every node on the network has said it reads compact records', () => {
  const says = new Map([['n1', 'json,compact'], ['n2', 'json,compact'], ['n3', 'json']]);
  assert.equal(compactAllowed(['n1', 'n2'], says), true);
  assert.equal(compactAllowed(['n1', 'n2', 'n3'], says), false, 'n3 reads JSON only');
  assert.equal(compactAllowed(['n1', 'n4'], says), false, 'n4 (an older agent, or its word not here yet) has said nothing');
  assert.equal(compactAllowed([], says), false);
});

test('endpoint record JSON: a `__proto__` key, spelled plainly or with \\u escapes, at any depth, is dropped as before (the fast path skips the reviver only when no such key can be spelled)', () => {
  const json = JSON.stringify(withPorts);
  const variants = [
    json.replace('{"v":1,', '{"__proto__":{"x":1},"v":1,'),
    json.replace('{"v":1,', '{"\\u005f_proto__":{"x":1},"v":1,'),
    json.replace('{"proto":"udp"', '{"__pr\\u006fto__":7,"proto":"udp"'),
    json.replace('"aliases":', '"ali\\u0061ses":'), // an escape that spells a real key: parsed as before
  ];
  for (const text of variants) {
    const d = decodeEndpoint(new TextEncoder().encode(text));
    assert.deepEqual(d, { ok: true, record: withPorts }, text.slice(0, 60));
  }
  assert.deepEqual(decodeEndpoint(new TextEncoder().encode(json.replace('"aliases":', '"__proto_x":1,"aliases":'))), { ok: false, reason: 'endpoint-schema' }, 'an unknown key is still refused');
});
