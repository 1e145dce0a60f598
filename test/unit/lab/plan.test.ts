import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_MAC, hostResolvConf, labOfNamespace, nodeAddr, nodeMac, parseNodeCount, planLab, renderCreateNamespaces, renderHost, renderSwitch, underlayHosts, validateLabName } from '../../../src/lab/plan.js';
import { MeshError } from '../../../src/core/errors.js';

test('node addresses are unique and on the underlay', () => {
  const seen = new Set<string>();
  for (let i = 1; i <= 250; i++) {
    const a = nodeAddr(i);
    assert.match(a, /^10\.99\.\d+\.\d+$/);
    assert.ok(!seen.has(a));
    seen.add(a);
  }
  assert.equal(nodeAddr(1), '10.99.1.1');
  assert.equal(nodeAddr(250), '10.99.1.250');
});

for (const [input, ok] of [['1', 1], ['3', 3], ['250', 250], ['0', null], ['251', null], ['abc', null], ['-1', null], ['1.5', null], ['', null], [' 2 ', 2]] as const) {
  test(`--nodes ${JSON.stringify(input)}`, () => {
    if (ok === null) assert.throws(() => parseNodeCount(input), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
    else assert.equal(parseNodeCount(input), ok);
  });
}

test('lab names are validated and recovered from namespace names', () => {
  assert.equal(validateLabName('demo'), 'demo');
  for (const bad of ['', 'Demo', '1abc', 'a-b', 'abcdefghijklm', '../x']) assert.throws(() => validateLabName(bad));
  assert.equal(labOfNamespace('mlab-demo-n1'), 'demo');
  assert.equal(labOfNamespace('mlab-x-n2-ov-abc'), 'x');
  assert.equal(labOfNamespace('other-ns'), undefined);
});

test('underlay MACs: unique, locally administered unicast, one per planned host and the client', () => {
  const macs = new Set(underlayHosts(planLab('x', 250)).map((h) => h.mac));
  assert.equal(macs.size, 251);
  for (const m of macs) assert.match(m, /^02:99:00:00:[0-9a-f]{2}:[0-9a-f]{2}$/);
  assert.equal(CLIENT_MAC, nodeMac(0));
  assert.equal(nodeMac(250), '02:99:00:00:00:fa');
});

test('a host gets a permanent neighbour for every other underlay host and none for itself (no ARP entries: the kernel counts them machine-wide)', () => {
  const hosts = underlayHosts(planLab('x', 64));
  for (const self of [hosts[0]!, hosts[64]!]) {
    const neigh = renderHost(self, hosts).split('\n').filter((l) => l.startsWith('neigh '));
    assert.equal(neigh.length, 64);
    assert.ok(neigh.every((l) => l.endsWith('nud permanent')));
    assert.ok(!neigh.some((l) => l.startsWith(`neigh replace ${self.addr} `)));
  }
});

test('plan: seeds point at earlier nodes only; golden batch scripts', () => {
  const p = planLab('x', 5);
  assert.deepEqual(p[0]!.seeds, []);
  assert.deepEqual(p[4]!.seeds, ['10.99.1.1:7946', '10.99.1.2:7946', '10.99.1.3:7946']);
  assert.equal(
    renderCreateNamespaces('x', p.slice(0, 2)),
    [
      'netns add mlab-x-sw',
      'netns add mlab-x-client',
      'netns add mlab-x-n1',
      'netns add mlab-x-n2',
      'link add client netns mlab-x-sw type veth peer name eth0 netns mlab-x-client',
      'link add n1 netns mlab-x-sw type veth peer name eth0 netns mlab-x-n1',
      'link add n2 netns mlab-x-sw type veth peer name eth0 netns mlab-x-n2',
      '',
    ].join('\n'),
  );
  assert.match(renderSwitch(p.slice(0, 1)), /link set n1 master br0\nlink set n1 up\n$/);
  const hosts = underlayHosts(p.slice(0, 2));
  assert.equal(
    renderHost(hosts[1]!, hosts),
    [
      'link set lo up',
      'link set eth0 address 02:99:00:00:00:01',
      'addr add 10.99.1.1/16 dev eth0',
      'link set eth0 up',
      'neigh replace 10.99.0.2 lladdr 02:99:00:00:00:00 dev eth0 nud permanent',
      'neigh replace 10.99.1.2 lladdr 02:99:00:00:00:02 dev eth0 nud permanent',
      '',
    ].join('\n'),
  );
  test('hostResolvConf: the lab host namespace file when it exists (the lab puts it in the agent config)', () => {
    assert.equal(hostResolvConf('lab1', 'n2', () => true), '/etc/netns/mlab-lab1-n2/resolv.conf');
    assert.equal(hostResolvConf('lab1', 'n2', () => false), '/etc/resolv.conf');
  });
});
