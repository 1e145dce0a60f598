/**
 * Stale backends (core/lb/ct-flush.ts): which removals of a plan get their conntrack entries
 * deleted, the `conntrack -R` batch for them, and that every syncer path (delta, fast path,
 * incremental, full after a failure) reports them — and a drain never does.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { conntrackBatch, notServedIn, staleTargets, type StaleTarget } from '../../../src/core/lb/ct-flush.js';
import { DeltaDesired } from '../../../src/core/lb/desired-delta.js';
import { diffCompiled } from '../../../src/core/lb/diff.js';
import { compile, type Backend, type IngressPublish, type LbDesired, type VipService } from '../../../src/core/lb/model.js';
import { NftSyncer } from '../../../src/core/lb/nft-syncer.js';
import { IpvsSyncer } from '../../../src/core/lb/ipvs-syncer.js';

const be = (n: number, state: Backend['state'] = 'active', over: Partial<Backend> = {}): Backend => ({ id: `t${n}`, ip: `10.0.0.${n}`, state, ...over });
function svc(backends: Backend[], over: Partial<VipService> = {}): VipService {
  return { id: 'svcdns', name: 'dns', vip: '10.0.9.2', ports: [{ proto: 'udp', port: 53, targetPort: 5353 }, { proto: 'tcp', port: 53, targetPort: 5353 }], backends, ...over };
}
function pub(backends: Backend[], over: Partial<IngressPublish> = {}): IngressPublish {
  return { service: 'svcweb', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'cluster', backends, ...over };
}
const desired = (services: VipService[], ingress: IngressPublish[] = []): LbDesired => ({ services, ingress });
const stale = (a: LbDesired, b: LbDesired): StaleTarget[] => staleTargets(diffCompiled(compile(a), compile(b)));
const vipUdp = (n: number): StaleTarget => ({ family: 'ipv4', proto: 'udp', vip: '10.0.9.2', port: 53, ip: `10.0.0.${n}`, targetPort: 5353 });
const vipTcp = (n: number): StaleTarget => ({ ...vipUdp(n), proto: 'tcp' });

describe('staleTargets: which backends a diff removes', () => {
  const cases: Array<{ name: string; from: LbDesired; to: LbDesired; want: StaleTarget[] }> = [
    { name: 'backend record deleted: both ports', from: desired([svc([be(1), be(2)])]), to: desired([svc([be(2)])]), want: [vipTcp(1), vipUdp(1)] },
    { name: 'active → draining: not stale (established flows finish)', from: desired([svc([be(1), be(2)])]), to: desired([svc([be(1, 'draining'), be(2)])]), want: [] },
    { name: 'draining → removed (the drain ended): stale', from: desired([svc([be(1, 'draining'), be(2)])]), to: desired([svc([be(2)])]), want: [vipTcp(1), vipUdp(1)] },
    { name: 'weight change / backend added: nothing', from: desired([svc([be(1), be(2)])]), to: desired([svc([be(1, 'active', { weight: 3 }), be(2), be(3)])]), want: [] },
    { name: 'same task, new address: the old address is stale', from: desired([svc([be(1)])]), to: desired([svc([{ ...be(1), ip: '10.0.0.7' }])]), want: [vipTcp(1), vipUdp(1)] },
    { name: 'service gone: all its backends', from: desired([svc([be(1), be(2)], { ports: [{ proto: 'udp', port: 53, targetPort: 5353 }] })]), to: desired([]), want: [vipUdp(1), vipUdp(2)] },
    { name: 'VIP changed: the old VIP frontend\'s backends', from: desired([svc([be(1)], { ports: [{ proto: 'udp', port: 53, targetPort: 5353 }] })]), to: desired([svc([be(1)], { vip: '10.0.9.3', ports: [{ proto: 'udp', port: 53, targetPort: 5353 }] })]), want: [vipUdp(1)] },
    {
      name: 'published port: no original destination address (any local address)',
      from: desired([], [pub([be(1), be(2)])]), to: desired([], [pub([be(2)])]),
      want: [{ family: 'ipv4', proto: 'tcp', port: 8080, ip: '10.0.0.1', targetPort: 80 }],
    },
    {
      name: 'dual-stack VIP: the IPv6 frontend too',
      from: desired([svc([be(1, 'active', { ip6: 'fd00::1' }), be(2, 'active', { ip6: 'fd00::2' })], { vip6: 'fd00::9:2', ports: [{ proto: 'udp', port: 53, targetPort: 5353 }] })]),
      to: desired([svc([be(2, 'active', { ip6: 'fd00::2' })], { vip6: 'fd00::9:2', ports: [{ proto: 'udp', port: 53, targetPort: 5353 }] })]),
      want: [vipUdp(1), { family: 'ipv6', proto: 'udp', vip: 'fd00::9:2', port: 53, ip: 'fd00::1', targetPort: 5353 }],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const key = (s: StaleTarget): string => JSON.stringify(s);
      assert.deepEqual(stale(c.from, c.to).map(key).sort(), c.want.map(key).sort());
    });
  }
});

describe('conntrackBatch', () => {
  test('one -D line per stale target, duplicates dropped; empty when nothing', () => {
    assert.equal(conntrackBatch([]), '');
    const pubTarget: StaleTarget = { family: 'ipv4', proto: 'tcp', port: 8080, ip: '10.0.0.1', targetPort: 80 };
    assert.equal(
      conntrackBatch([vipUdp(1), vipUdp(1), pubTarget]),
      '-D -f ipv4 -p udp --orig-dst 10.0.9.2 --orig-port-dst 53 --reply-src 10.0.0.1 --reply-port-src 5353\n'
      + '-D -f ipv4 -p tcp --orig-port-dst 8080 --reply-src 10.0.0.1 --reply-port-src 80\n',
    );
  });
});

test('notServedIn: a retried flush skips addresses served again (any service, active or draining, IPv6 too)', () => {
  const v6: StaleTarget = { family: 'ipv6', proto: 'udp', vip: 'fd00::9:2', port: 53, ip: 'fd00::3', targetPort: 5353 };
  const d = desired([svc([be(2, 'draining'), be(3, 'active', { ip6: 'fd00::3' })])], [pub([be(4)])]);
  assert.deepEqual(notServedIn(d, [vipUdp(1), vipUdp(2), v6, { ...vipTcp(4), vip: undefined }, vipUdp(5)]), [vipUdp(1), vipUdp(5)]);
});

describe('syncer plans carry the stale backends', () => {
  const a = desired([svc([be(1), be(2)])]);
  const b = desired([svc([be(2)])]);
  test('incremental, noop and first full plans', () => {
    const s = new NftSyncer();
    const p0 = s.plan(a);
    assert.deepEqual(p0.stale, [], 'first apply: nothing known before');
    s.committed(p0);
    assert.deepEqual(s.plan(a).stale, []);
    const p1 = s.plan(b);
    assert.equal(p1.mode, 'incremental');
    assert.deepEqual(p1.stale, [vipTcp(1), vipUdp(1)]);
  });
  test('a failed apply: the full resync that applies the removal still reports it; once committed, no longer', () => {
    const s = new NftSyncer();
    s.committed(s.plan(a));
    s.plan(b); // its apply fails
    s.failed();
    const p = s.plan(b);
    assert.equal(p.mode, 'full');
    assert.deepEqual(p.stale, [vipTcp(1), vipUdp(1)]);
    s.committed(p);
    s.requestFullResync();
    const again = s.plan(b);
    assert.equal(again.mode, 'full');
    assert.deepEqual(again.stale, [], 'drift resync of the same state: nothing removed');
  });
  test('delta path (DeltaDesired derived from the committed version)', () => {
    const s = new NftSyncer();
    const d0 = DeltaDesired.of(new Map([['app\0svcdns', svc([be(1), be(2)])]]));
    s.committed(s.plan(d0));
    const d1 = d0.next({ services: [{ key: 'app\0svcdns', before: svc([be(1), be(2)]), after: svc([be(1, 'draining'), be(2)]) }], ingress: [] });
    const p1 = s.plan(d1);
    assert.deepEqual(p1.stale, [], 'draining is not stale');
    s.committed(p1);
    const d2 = d1.next({ services: [{ key: 'app\0svcdns', before: svc([be(1, 'draining'), be(2)]), after: svc([be(2)]) }], ingress: [] });
    assert.deepEqual(s.plan(d2).stale, [vipTcp(1), vipUdp(1)]);
  });
  test('IPVS plans report none (the kernel expires a removed real server\'s connections itself)', () => {
    const s = new IpvsSyncer();
    s.committed(s.plan(a));
    const p = s.plan(b);
    assert.equal(p.mode, 'incremental');
    assert.deepEqual(p.stale, []);
  });
});
