import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredNode } from '../../../src/core/overlay/desired.js';
import { additionsOnly, canonical, diff, isRemoval, renderBatches, toBatches, type Op } from '../../../src/core/overlay/diff.js';
import type { NodeState, OverlayConfig, OverlayNetwork, RemoteEndpoint } from '../../../src/core/overlay/model.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import { fdbRows, sandboxRows } from '../../../src/core/overlay/debug.js';

const config: OverlayConfig = { prefix: 'meshd-', hostNs: 'host1', underlayIp: '192.168.1.1', underlayMtu: 1500, vxlanPort: 4789 };
const A: OverlayNetwork = { id: 'a1b2c3d4e5f6a7b8', name: 'app', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };
const B: OverlayNetwork = { id: 'ffff00001111', name: 'db', vni: 4097, subnet: '10.0.2.0/24', gateway: '10.0.2.1', mtu: 1400 };
const ep = (net: OverlayNetwork, ip: string, nodeIp: string): RemoteEndpoint => ({ network: net.id, ip, mac: macFromIp(ip), nodeIp });
const remote = [
  ep(A, '10.0.1.10', '192.168.1.2'), ep(A, '10.0.1.9', '192.168.1.3'), ep(A, '10.0.1.2', '192.168.1.1'),
  ep(B, '10.0.2.5', '192.168.1.2'), ep(A, '10.0.1.77', '192.168.1.9'),
];
const members = ['192.168.1.3', '192.168.1.1', '192.168.1.2'];
const EMPTY: NodeState = { sandboxes: [], strayHostLinks: [] };
const H = '<<' + 'EOF';

describe('desiredNode', () => {
  const d = desiredNode({ config, networks: [B, A], remote, members });
  test('sandboxes sorted, self and non-member endpoints dropped, numeric IP order, MTU rules', () => {
    assert.deepEqual(d.state.sandboxes.map((s) => s.ns), ['meshd-ov-a1b2c3d4e5f6', 'meshd-ov-ffff00001111']);
    const a = d.state.sandboxes[0]!;
    assert.deepEqual(a.neigh.map((n) => n.ip), ['10.0.1.9', '10.0.1.10']);
    assert.deepEqual(a.fdb, [{ mac: '02:42:0a:00:01:09', dst: '192.168.1.3' }, { mac: '02:42:0a:00:01:0a', dst: '192.168.1.2' }]);
    assert.equal(a.vxlan?.mtu, 1450);
    assert.equal(a.bridge?.mtu, 1450);
    assert.equal(d.state.sandboxes[1]!.vxlan?.mtu, 1400);
    assert.deepEqual(d.guardAllow, ['192.168.1.2', '192.168.1.3']);
  });
  test('deterministic regardless of input order', () => {
    const d2 = desiredNode({ config, networks: [A, B], remote: [...remote].reverse(), members: [...members].reverse() });
    assert.equal(canonical(d2.state), canonical(d.state));
    assert.deepEqual(d2.guardAllow, d.guardAllow);
  });
  test('without members every remote endpoint counts; endpoints outside the subnet are ignored', () => {
    const d3 = desiredNode({ config, networks: [A], remote: [...remote, ep(A, '10.9.9.9', '192.168.1.2')] });
    assert.equal(d3.state.sandboxes[0]!.fdb.length, 3);
  });
  test('bad networks are rejected', () => {
    assert.throws(() => desiredNode({ config, networks: [{ ...A, subnet: '10.0.1.0/33' }], remote }), /invalid CIDR/);
    assert.throws(() => desiredNode({ config, networks: [{ ...A, gateway: '10.9.9.1' }], remote }), /outside/);
    assert.throws(() => desiredNode({ config, networks: [A, { ...B, vni: 4096 }], remote }), /share VNI 4096/);
    assert.throws(() => desiredNode({ config, networks: [A, { ...B, id: 'a1b2c3d4e5f6zz' }], remote }), /same sandbox/);
    assert.throws(() => desiredNode({ config, networks: [{ ...A, id: '../x' }], remote }), /invalid network id/);
    assert.throws(() => desiredNode({ config: { ...config, underlayIp: 'x' }, networks: [A], remote }), /underlay/);
  });
});

const GOLDEN_CREATE = [
  'ip netns add meshd-ov-a1b2c3d4e5f6',
  `ip -n host1 -batch - ${H}`,
  'link add vx-4096 mtu 1450 type vxlan id 4096 dstport 4789 local 192.168.1.1 nolearning proxy',
  'link set vx-4096 netns meshd-ov-a1b2c3d4e5f6',
  'EOF',
  `ip -n meshd-ov-a1b2c3d4e5f6 -batch - ${H}`,
  'link add br0 type bridge',
  'link set br0 mtu 1450 up',
  'addr add 10.0.1.1/24 dev br0',
  'link set vx-4096 mtu 1450 master br0 up',
  'neigh replace 10.0.1.9 lladdr 02:42:0a:00:01:09 dev vx-4096 nud permanent',
  'neigh replace 10.0.1.10 lladdr 02:42:0a:00:01:0a dev vx-4096 nud permanent',
  'EOF',
  `bridge -n meshd-ov-a1b2c3d4e5f6 -batch - ${H}`,
  'fdb replace 02:42:0a:00:01:09 dev vx-4096 dst 192.168.1.3 self permanent',
  'fdb replace 02:42:0a:00:01:0a dev vx-4096 dst 192.168.1.2 self permanent',
  'EOF',
  '',
].join('\n');

describe('diff + render (golden)', () => {
  const want = desiredNode({ config, networks: [A], remote, members }).state;
  test('from empty: create before use, one batch per tool and namespace', () => {
    const batches = toBatches(diff(want, EMPTY));
    assert.equal(renderBatches(batches, config.hostNs), GOLDEN_CREATE);
    assert.equal(batches.length, 4);
  });
  test('converged → no operations', () => {
    assert.deepEqual(diff(want, JSON.parse(JSON.stringify(want)) as NodeState), []);
  });
  test('drift: missing/wrong entries repaired, extras deleted, extra sandbox deleted first, strays removed', () => {
    const actual = JSON.parse(JSON.stringify(want)) as NodeState;
    const sb = actual.sandboxes[0]!;
    sb.fdb = [{ mac: '02:42:0a:00:01:09', dst: '192.168.1.99' }, { mac: '02:42:0a:00:01:63', dst: '192.168.1.2' }];
    sb.neigh = [{ ip: '10.0.1.9', mac: '02:42:0a:00:01:09' }, { ip: '10.0.1.99', mac: '02:42:0a:00:01:63' }];
    sb.bridge!.addrs = ['10.0.1.254/24'];
    sb.vxlan!.up = false;
    actual.sandboxes.push({ ns: 'meshd-ov-old', network: '', bridge: null, vxlan: null, fdb: [], neigh: [] });
    actual.strayHostLinks = ['vx-5000'];
    assert.equal(renderBatches(toBatches(diff(want, actual)), null), [
      'ip netns del meshd-ov-old',
      `ip -batch - ${H}`,
      'link del vx-5000',
      'EOF',
      `ip -n meshd-ov-a1b2c3d4e5f6 -batch - ${H}`,
      'addr del 10.0.1.254/24 dev br0',
      'addr add 10.0.1.1/24 dev br0',
      'link set vx-4096 up',
      'neigh del 10.0.1.99 dev vx-4096',
      'neigh replace 10.0.1.10 lladdr 02:42:0a:00:01:0a dev vx-4096 nud permanent',
      'EOF',
      `bridge -n meshd-ov-a1b2c3d4e5f6 -batch - ${H}`,
      'fdb del 02:42:0a:00:01:63 dev vx-4096 dst 192.168.1.2 self',
      'fdb replace 02:42:0a:00:01:09 dev vx-4096 dst 192.168.1.3 self permanent',
      'fdb replace 02:42:0a:00:01:0a dev vx-4096 dst 192.168.1.2 self permanent',
      'EOF',
      '',
    ].join('\n'));
  });
  test('VXLAN device with the wrong identity is deleted in the sandbox and recreated from the host', () => {
    const actual = JSON.parse(JSON.stringify(want)) as NodeState;
    actual.sandboxes[0]!.vxlan!.port = 8472;
    assert.equal(renderBatches(toBatches(diff(want, actual)), 'host1'), [
      `ip -n meshd-ov-a1b2c3d4e5f6 -batch - ${H}`,
      'link del vx-4096',
      'EOF',
      `ip -n host1 -batch - ${H}`,
      'link add vx-4096 mtu 1450 type vxlan id 4096 dstport 4789 local 192.168.1.1 nolearning proxy',
      'link set vx-4096 netns meshd-ov-a1b2c3d4e5f6',
      'EOF',
      `ip -n meshd-ov-a1b2c3d4e5f6 -batch - ${H}`,
      'link set vx-4096 mtu 1450 master br0 up',
      'neigh replace 10.0.1.9 lladdr 02:42:0a:00:01:09 dev vx-4096 nud permanent',
      'neigh replace 10.0.1.10 lladdr 02:42:0a:00:01:0a dev vx-4096 nud permanent',
      'EOF',
      `bridge -n meshd-ov-a1b2c3d4e5f6 -batch - ${H}`,
      'fdb replace 02:42:0a:00:01:09 dev vx-4096 dst 192.168.1.3 self permanent',
      'fdb replace 02:42:0a:00:01:0a dev vx-4096 dst 192.168.1.2 self permanent',
      'EOF',
      '',
    ].join('\n'));
  });
  test('a sandbox no longer wanted: its VXLAN device is deleted before the namespace (frees the VNI at once)', () => {
    const gone = desiredNode({ config, networks: [A, B], remote, members }).state;
    const ops = diff(want, gone);
    assert.deepEqual(ops, [{ kind: 'netns-del', ns: 'meshd-ov-ffff00001111', vxlan: 'vx-4097' }]);
    assert.equal(renderBatches(toBatches(ops), 'host1'), 'ip -n meshd-ov-ffff00001111 link del vx-4097\nip netns del meshd-ov-ffff00001111\n');
    assert.deepEqual(additionsOnly(ops), [], 'a removal as a whole');
  });
  test('1,000 remote endpoints → still 4 processes', () => {
    const big = { ...A, subnet: '10.0.0.0/16' };
    const many: RemoteEndpoint[] = [];
    for (let i = 0; i < 1000; i++) many.push(ep(big, `10.0.${4 + (i >> 8)}.${i & 255}`, `192.168.1.${2 + (i % 2)}`));
    const st = desiredNode({ config, networks: [big], remote: many, members }).state;
    const ops = diff(st, EMPTY);
    assert.equal(toBatches(ops).length, 4);
    assert.equal(ops.length, 1 + 2 + 4 + 2000);
  });
});

describe('debug views (netctl debug fdb / sandbox)', () => {
  const want = desiredNode({ config, networks: [A], remote, members }).state;
  test('fdb rows mark ok / missing / extra / wrong', () => {
    const actual = JSON.parse(JSON.stringify(want)) as NodeState;
    const sb = actual.sandboxes[0]!;
    sb.fdb = [{ mac: '02:42:0a:00:01:09', dst: '192.168.1.99' }, { mac: '02:42:0a:00:01:63', dst: '192.168.1.2' }];
    sb.neigh = [{ ip: '10.0.1.9', mac: '02:42:0a:00:01:09' }];
    assert.deepEqual(fdbRows(want, actual).map((r) => [r.ip, r.mac, r.want, r.have, r.fdb, r.neigh]), [
      ['10.0.1.9', '02:42:0a:00:01:09', '192.168.1.3', '192.168.1.99', 'wrong', 'ok'],
      ['10.0.1.10', '02:42:0a:00:01:0a', '192.168.1.2', null, 'missing', 'missing'],
      [null, '02:42:0a:00:01:63', null, '192.168.1.2', 'extra', 'ok'],
    ]);
    assert.deepEqual(fdbRows(want, actual, 'nope'), []);
    assert.ok(fdbRows(want, want).every((r) => r.fdb === 'ok' && r.neigh === 'ok'));
  });
  test('sandbox rows spell out link drift', () => {
    const actual = JSON.parse(JSON.stringify(want)) as NodeState;
    actual.sandboxes[0]!.vxlan!.mtu = 1500;
    actual.sandboxes.push({ ns: 'meshd-ov-zzz', network: '', bridge: null, vxlan: null, fdb: [], neigh: [] });
    assert.deepEqual(sandboxRows(want, actual).map((r) => [r.sandbox, r.state, r.details]), [
      ['meshd-ov-a1b2c3d4e5f6', 'wrong', ['vxlan mtu 1500 ≠ 1450']],
      ['meshd-ov-zzz', 'extra', []],
    ]);
    assert.deepEqual(sandboxRows(want, { sandboxes: [], strayHostLinks: [] }).map((r) => r.state), ['missing']);
  });
});

describe('additionsOnly / isRemoval', () => {
  const cases: Array<[Op, boolean]> = [
    [{ kind: 'netns-del', ns: 'x' }, true],
    [{ kind: 'netns-add', ns: 'x' }, false],
    [{ kind: 'ip', ns: null, line: 'link del vx-4096' }, true],
    [{ kind: 'ip', ns: null, line: 'link add vx-4096 mtu 1450 type vxlan id 4096' }, false],
    [{ kind: 'ip', ns: 'x', line: 'link del vx-4096' }, false],
    [{ kind: 'ip', ns: 'x', line: 'addr del 10.0.0.1/24 dev br0' }, true],
    [{ kind: 'ip', ns: 'x', line: 'neigh del 10.0.0.7 dev vx-4096' }, true],
    [{ kind: 'ip', ns: 'x', line: 'neigh replace 10.0.0.7 lladdr 02:42:0a:00:00:07 dev vx-4096 nud permanent' }, false],
    [{ kind: 'bridge', ns: 'x', line: 'fdb del 02:42:0a:00:00:07 dev vx-4096 dst 10.99.1.5 self' }, true],
    [{ kind: 'bridge', ns: 'x', line: 'fdb replace 02:42:0a:00:00:07 dev vx-4096 dst 10.99.1.5 self permanent' }, false],
  ];
  for (const [op, want] of cases) test(`${op.kind} ${'line' in op ? op.line : op.ns} → ${want ? 'removal' : 'kept'}`, () => assert.equal(isRemoval(op), want));
  test('additionsOnly keeps order and drops removals', () => {
    assert.deepEqual(additionsOnly(cases.map(([op]) => op)), cases.filter(([, r]) => !r).map(([op]) => op));
  });
});
