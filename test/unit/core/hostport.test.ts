/**
 * host:port parsing and printing for IPv4 and IPv6 underlays (issue 19 §2): an IPv6 host is always
 * bracketed, an IPv4 address prints exactly as before, and a bare IPv6 host with a port is refused.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHostPort, hostOfAddr, ipFamily, isUnderlayIp, parseHostPort } from '../../../src/core/hostport.js';
import { agentConfigSchema } from '../../../src/core/config.js';
import { splitAddr } from '../../../src/adapters/gossip/transport.js';
import { overlayMtu, vxlanOverheadOf } from '../../../src/core/overlay/model.js';
import { MtuPolicy, overlayMtuOf } from '../../../src/core/overlay/mtu.js';
import { PROBE_SCRIPT } from '../../../src/adapters/netlink/pmtu.js';

describe('host:port', () => {
  test('format: IPv4 as before, IPv6 bracketed once', () => {
    assert.equal(formatHostPort('10.99.1.1', 7946), '10.99.1.1:7946');
    assert.equal(formatHostPort('fd00:99::1', 7946), '[fd00:99::1]:7946');
    assert.equal(formatHostPort('[fd00:99::1]', 2377), '[fd00:99::1]:2377');
  });
  test('parse: both families round-trip; IPv6 canonical', () => {
    assert.deepEqual(parseHostPort('10.99.1.1:7946'), { host: '10.99.1.1', port: 7946 });
    assert.deepEqual(parseHostPort('[fd00:99::1]:7946'), { host: 'fd00:99::1', port: 7946 });
    assert.deepEqual(parseHostPort('[FD00:99:0:0::1]:1'), { host: 'fd00:99::1', port: 1 });
    for (const a of ['10.0.0.1:80', '[fd00::2]:65535']) assert.equal(formatHostPort(parseHostPort(a).host, parseHostPort(a).port), a);
    assert.deepEqual(splitAddr('[fd00::7]:7946'), { host: 'fd00::7', port: 7946 });
  });
  test('parse: bad input is MESHD_BAD_ARGUMENT naming the field', () => {
    for (const bad of ['fd00::1:7946', '[fd00::1]', '[fd00::1]7946', '[10.0.0.1]:80', '[zz::1]:80', '10.0.0.1', ':80', '10.0.0.1:0', '10.0.0.1:65536', '10.0.0.1:8x', '']) {
      assert.throws(() => parseHostPort(bad, 'gossip address'), (e: Error & { code?: string }) => e.code === 'MESHD_BAD_ARGUMENT' && /gossip address/.test(e.message), bad);
    }
  });
  test('host of a gossip address, family', () => {
    assert.equal(hostOfAddr('10.99.1.1:7946'), '10.99.1.1');
    assert.equal(hostOfAddr('[fd00:99::1]:7946'), 'fd00:99::1');
    assert.equal(hostOfAddr('fd00:99::1'), 'fd00:99::1');
    assert.equal(ipFamily('10.0.0.1'), 4);
    assert.equal(ipFamily('fd00::1'), 6);
    assert.throws(() => ipFamily('x'), /invalid IP address/);
    assert.equal(isUnderlayIp('fd00::1'), true);
    assert.equal(isUnderlayIp('fd00::1:80x'), false);
  });
  test('config: advertiseAddr takes IPv6 (stored canonical), seeds take [v6]:port, DNS upstreams stay IPv4', () => {
    const c = agentConfigSchema.parse({ nodeName: 'n1', advertiseAddr: 'FD00:99:0::1', gossip: { seeds: ['[fd00:99::2]:7946', '10.0.0.1:7946'] } });
    assert.equal(c.advertiseAddr, 'fd00:99::1');
    assert.deepEqual(c.gossip.seeds, ['[fd00:99::2]:7946', '10.0.0.1:7946']);
    assert.equal(agentConfigSchema.safeParse({ nodeName: 'n1', advertiseAddr: '10.0.0.1', gossip: { seeds: ['fd00:99::2:7946'] } }).success, false);
    assert.equal(agentConfigSchema.safeParse({ nodeName: 'n1', advertiseAddr: 'fd00::1::2' }).success, false);
    assert.equal(agentConfigSchema.safeParse({ nodeName: 'n1', advertiseAddr: '10.0.0.1', dns: { upstreams: ['[fd00::53]:53'] } }).success, false);
  });
});

describe('VXLAN over an IPv6 underlay: 70 bytes of overhead', () => {
  test('overhead by underlay family; --mtu still wins', () => {
    assert.equal(vxlanOverheadOf('10.99.1.1'), 50);
    assert.equal(vxlanOverheadOf('fd00:99::1'), 70);
    assert.equal(overlayMtu(1500, undefined, vxlanOverheadOf('fd00:99::1')), 1430);
    assert.equal(overlayMtu(1500), 1450);
    assert.equal(overlayMtuOf(1500, 1300, 70), 1300);
  });
  test('the MTU policy reports overlay MTUs with its overhead', () => {
    const p = new MtuPolicy(1500, { raiseAfterRounds: 2, overhead: 70 });
    assert.equal(p.overlay, 1430);
    p.handle({ type: 'round', results: { 'fd00:99::2': 1400 } }, 0);
    const [c] = p.drain();
    assert.deepEqual([c!.to, c!.overlayTo, c!.overlayFrom], [1400, 1330, 1430]);
    assert.equal(new MtuPolicy(1500).overlay, 1450);
  });
  test('the path-MTU probe subtracts 48 bytes of headers for an IPv6 peer, 28 for IPv4', () => {
    assert.match(PROBE_SCRIPT, /case "\$1" in \*:\*\) h=48;; \*\) h=28;; esac; ping -n -q -M do .* -s \$\(\(\$2 - h\)\) "\$1"/);
  });
});
