import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isMeshError } from '../../../src/core/errors.js';
import { NftSyncer } from '../../../src/core/lb/nft-syncer.js';
import { IpvsSyncer } from '../../../src/core/lb/ipvs-syncer.js';
import { conntrackSysctls, DEFAULT_IDLE_TIMEOUTS, effectiveTimeouts, ipvsTimeoutArgs, KEEPALIVE_HORIZON_SEC } from '../../../src/core/lb/timeouts.js';
import { base, changed } from './fixtures.js';
import * as G from './golden.js';

describe('LbSyncer', () => {
  test('full → noop → incremental; failure → full again', () => {
    const s = new NftSyncer();
    const p1 = s.plan(base());
    assert.equal(p1.mode, 'full');
    assert.equal(p1.nft, G.NFT_FULL);
    assert.equal(p1.changed, 6);
    s.committed(p1);
    const p2 = s.plan(base());
    assert.equal(p2.mode, 'noop');
    assert.equal(p2.nft, '');
    const p3 = s.plan(changed());
    assert.equal(p3.mode, 'incremental');
    assert.equal(p3.nft, G.NFT_INCREMENTAL);
    assert.equal(p3.changed, 6);
    s.failed();
    const p4 = s.plan(changed());
    assert.equal(p4.mode, 'full');
    s.committed(p4);
    s.requestFullResync();
    assert.equal(s.plan(changed()).mode, 'full');
  });
  test('planning does not change state until committed', () => {
    const s = new NftSyncer();
    s.committed(s.plan(base()));
    s.plan(changed());
    assert.equal(s.plan(base()).mode, 'noop');
  });
  test('invalid desired state throws MESHD_BAD_ARGUMENT and keeps the last applied state', () => {
    const s = new NftSyncer();
    s.committed(s.plan(base()));
    const d = base();
    d.services[0]!.vip = 'nope';
    assert.throws(() => s.plan(d), (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT');
    assert.equal(s.plan(base()).mode, 'noop');
  });
  test('ipvs: marks carried across syncs', () => {
    const s = new IpvsSyncer();
    const p1 = s.plan(base());
    assert.equal(p1.ipvs, G.IPVS_FULL);
    s.committed(p1);
    const p2 = s.plan(changed());
    assert.equal(p2.ipvs, G.IPVS_INCREMENTAL);
    assert.equal(p2.nft, G.IPVS_INCREMENTAL_NFT);
    s.committed(p2);
    s.failed();
    const p3 = s.plan(changed());
    assert.equal(p3.mode, 'full');
    assert.doesNotMatch(p3.ipvs, /^-C$/m, 'a full resync never clears the table');
    assert.match(p3.ipvs, /-A -f 262 -s rr/, 'marks survive a full resync (no re-numbering under live connections)');
    assert.ok(s.fullNext());
  });
});

describe('idle timeouts (moby#31208)', () => {
  test('table', () => {
    const cases: [number, number][] = [[900, KEEPALIVE_HORIZON_SEC], [7875, 7875], [86_400, 86_400], [Number.NaN, KEEPALIVE_HORIZON_SEC], [10_000.4, 10_000]];
    for (const [inp, want] of cases) assert.equal(effectiveTimeouts({ ...DEFAULT_IDLE_TIMEOUTS, tcpEstablishedSec: inp }).tcpEstablishedSec, want, String(inp));
  });
  test('ipvsadm --set and conntrack sysctls', () => {
    assert.deepEqual(ipvsTimeoutArgs(DEFAULT_IDLE_TIMEOUTS), ['--set', '86400', '120', '300']);
    assert.deepEqual(conntrackSysctls({ tcpEstablishedSec: 900, tcpFinSec: 0, udpSec: 30 }), ['net.netfilter.nf_conntrack_tcp_timeout_established=7875', 'net.netfilter.nf_conntrack_udp_timeout_stream=30']);
  });
});
