/** applyEntryOps: the state after entry operations, computed exactly as the kernel (and the fake) would hold it. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeOverlayKernel } from '../../../src/adapters/netlink/fake.js';
import { canonical, diff, type Op } from '../../../src/core/overlay/diff.js';
import { applyEntryOps } from '../../../src/core/overlay/entries.js';
import { desiredNode } from '../../../src/core/overlay/desired.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import type { NodeState, OverlayConfig, OverlayNetwork, RemoteEndpoint } from '../../../src/core/overlay/model.js';

const config: OverlayConfig = { prefix: 'meshd-', hostNs: null, underlayIp: '192.168.1.1', underlayMtu: 9000, vxlanPort: 4789 };
const A: OverlayNetwork = { id: 'aaaa', name: 'a', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };
const B: OverlayNetwork = { id: 'bbbb', name: 'b', vni: 4097, subnet: '10.0.2.0/24', gateway: '10.0.2.1' };
const ep = (n: OverlayNetwork, ip: string, node: string): RemoteEndpoint => ({ network: n.id, ip, mac: macFromIp(ip), nodeIp: node });
const members = ['192.168.1.1', '192.168.1.2', '192.168.1.3'];
const desired = (remote: RemoteEndpoint[], networks = [A, B]): NodeState => desiredNode({ config, networks, remote, members }).state;

describe('applyEntryOps', () => {
  test('entry changes between two states: the computed state equals the desired one and what the fake kernel holds', async () => {
    const k = new FakeOverlayKernel();
    const from = [ep(A, '10.0.1.2', '192.168.1.2'), ep(A, '10.0.1.3', '192.168.1.3'), ep(B, '10.0.2.2', '192.168.1.2')];
    await k.apply(diff(desired(from), await k.read()));
    const before = await k.read();
    // One removed, one moved to another node, two added (order of ip keys: .10 after .9).
    const to = [ep(A, '10.0.1.3', '192.168.1.2'), ep(A, '10.0.1.10', '192.168.1.3'), ep(A, '10.0.1.9', '192.168.1.2'), ep(B, '10.0.2.2', '192.168.1.2')];
    const ops = diff(desired(to), before);
    assert.ok(ops.every((o) => o.kind === 'ip' || o.kind === 'bridge'));
    const after = applyEntryOps(before, ops);
    assert.ok(after);
    assert.equal(canonical(after), canonical(desired(to)));
    await k.apply(ops);
    assert.deepEqual(after, await k.read());
    assert.notEqual(after.sandboxes[0], before.sandboxes[0], 'the input state is not changed');
    assert.equal(before.sandboxes[0]!.fdb.length, 2);
  });
  test('anything but an entry operation, or an unknown sandbox or device: null (the caller reads the kernel)', async () => {
    const k = new FakeOverlayKernel();
    await k.apply(diff(desired([]), await k.read()));
    const s = await k.read();
    const cases: Op[][] = [
      [{ kind: 'netns-add', ns: 'meshd-ov-cccc' }],
      [{ kind: 'ip', ns: 'meshd-ov-aaaa', line: 'link set vx-4096 mtu 1400' }],
      [{ kind: 'ip', ns: null, line: 'link del vx-4096' }],
      [{ kind: 'ip', ns: 'meshd-ov-zzzz', line: 'neigh del 10.0.1.2 dev vx-4096' }],
      [{ kind: 'ip', ns: 'meshd-ov-aaaa', line: 'neigh del 10.0.1.2 dev vx-4097' }],
      [{ kind: 'bridge', ns: 'meshd-ov-aaaa', line: 'fdb replace 02:42:0a:00:01:02 dev vx-4096 dst 192.168.1.2 self' }],
      [{ kind: 'ip', ns: 'meshd-ov-aaaa', line: 'neigh replace 10.0.1.2 lladdr 02:42:0a:00:01:02 dev vx-4096' }],
    ];
    for (const ops of cases) assert.equal(applyEntryOps(s, ops), null, JSON.stringify(ops));
    assert.deepEqual(applyEntryOps(s, []), s);
  });
});
