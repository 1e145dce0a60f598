import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assignMarks, FWMARK_BASE, renderIpvsFull, renderIpvsIncremental } from '../../../src/core/lb/ipvs-render.js';
import { compile } from '../../../src/core/lb/model.js';
import { chainName, elementKey, slotKey, renderNftFlush, renderNftFull, renderNftIncremental } from '../../../src/core/lb/nftables-render.js';
import { b, base, changed } from './fixtures.js';
import * as G from './golden.js';

describe('nftables render (golden)', () => {
  test('full sync: one transaction that deletes and redefines the table', () => {
    assert.equal(renderNftFull(compile(base())), G.NFT_FULL);
  });
  test('incremental: only changed chains and elements', () => {
    assert.equal(renderNftIncremental(compile(base()), compile(changed())), G.NFT_INCREMENTAL);
  });
  test('no change → empty script', () => {
    assert.equal(renderNftIncremental(compile(base()), compile(base())), '');
  });
  test('one endpoint added: the chain rule (new modulus) and one slot element', () => {
    const d = base();
    d.services[0]!.backends.push(b('t9', '10.0.1.9'));
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.equal(s, [
      'flush chain ip meshd-lb vip-10.9.0.10-tcp-80',
      'add rule ip meshd-lb vip-10.9.0.10-tcp-80 meta mark set numgen random mod 3 goto vip-dnat-tcp comment "web tcp/80"',
      'add element ip meshd-lb vip-targets-tcp { 10.9.0.10 . 80 . 2 : 10.0.1.9 . 8080 }',
      '',
    ].join('\n'));
  });
  test('one endpoint replaced (same count): element changes only, no rule rewrite (cost ∝ change)', () => {
    const d = base();
    d.services[0]!.backends[0] = b('t5', '10.0.1.7'); // 10.0.1.4 → 10.0.1.7, both sort after 10.0.1.2
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.equal(s, [
      'delete element ip meshd-lb vip-targets-tcp { 10.9.0.10 . 80 . 1 }',
      'add element ip meshd-lb vip-targets-tcp { 10.9.0.10 . 80 . 1 : 10.0.1.7 . 8080 }',
      '',
    ].join('\n'));
  });
  test('draining a backend removes it from selection only', () => {
    const d = base();
    d.services[0]!.backends[0]!.state = 'draining'; // t3 10.0.1.4
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.match(s, /numgen random mod 1 goto vip-dnat-tcp/);
    assert.match(s, /delete element ip meshd-lb vip-targets-tcp \{ 10\.9\.0\.10 \. 80 \. 1 \}/);
    assert.doesNotMatch(s, /delete chain/);
  });
  test('only draining backends changed → nothing to send', () => {
    const d = base();
    d.services[0]!.backends = d.services[0]!.backends.filter((x) => x.state === 'active');
    assert.equal(renderNftIncremental(compile(base()), compile(d)), '');
  });
  test('last backend drains → frontend moves to empty-vips and its chain goes', () => {
    const d = base();
    d.services[1]!.backends = [b('d1', '10.0.1.20', 'draining')];
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.match(s, /add element ip meshd-lb empty-vips \{ 10\.9\.0\.11 \. udp \. 53 : goto reject-empty \}/);
    assert.match(s, /delete element ip meshd-lb vips \{ 10\.9\.0\.11 \. udp \. 53 \}\n/);
    assert.ok(s.indexOf('delete element ip meshd-lb vips { 10.9.0.11 . udp . 53 }') < s.indexOf('delete chain ip meshd-lb vip-10.9.0.11-udp-53'));
  });
  test('ingress policy flip cluster → local re-keys every slot and rewrites the rule without offset', () => {
    const d = base();
    d.ingress[0]!.policy = 'local';
    d.ingress[0]!.backends = d.ingress[0]!.backends.map((x) => ({ ...x, local: true }));
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.equal(s, [
      'flush chain ip meshd-lb ing-tcp-8080',
      'add rule ip meshd-lb ing-tcp-8080 meta mark set numgen random mod 2 goto ingress-dnat-tcp comment "svc-web tcp/8080 local"',
      'delete element ip meshd-lb ingress-targets-tcp { 8080 . 16384, 8080 . 16385 }',
      'add element ip meshd-lb ingress-targets-tcp { 8080 . 0 : 10.0.1.2 . 8080, 8080 . 1 : 10.0.1.4 . 8080 }',
      '',
    ].join('\n'));
  });
  test('names and keys', () => {
    assert.equal(chainName({ kind: 'vip', vip: '10.1.2.3', proto: 'udp', port: 53 }), 'vip-10.1.2.3-udp-53');
    assert.equal(chainName({ kind: 'ingress', proto: 'tcp', port: 8080 }), 'ing-tcp-8080');
    assert.equal(slotKey({ kind: 'ingress', proto: 'udp', port: 53, masquerade: false }, 4), '53 . 4');
    assert.equal(slotKey({ kind: 'ingress', proto: 'udp', port: 53, masquerade: true }, 4), '53 . 16388', 'cluster slots carry the masquerade bit');
    assert.equal(slotKey({ kind: 'vip', vip: '10.1.2.3', proto: 'udp', port: 53, masquerade: false }, 0), '10.1.2.3 . 53 . 0');
    assert.equal(elementKey({ kind: 'vip', vip: '10.1.2.3', proto: 'udp', port: 53 }), '10.1.2.3 . udp . 53');
    assert.equal(renderNftFlush(), 'table ip meshd-lb\ndelete table ip meshd-lb\n');
  });
  test('empty desired state renders a valid skeleton with no frontend chains', () => {
    const s = renderNftFull(compile({ services: [], ingress: [] }));
    assert.doesNotMatch(s, /chain (vip-\d|ing-)/);
    assert.doesNotMatch(s, /elements/);
  });
});

describe('ipvs render (golden)', () => {
  test('full: -C, fwmark services, reals (draining at weight 0), mark table, VIP addresses', () => {
    const p = renderIpvsFull(compile(base()));
    assert.equal(p.ipvs, G.IPVS_FULL);
    assert.equal(p.nft, G.IPVS_FULL_NFT);
    assert.equal(p.addrs, G.IPVS_FULL_ADDRS);
  });
  test('incremental: only changed services / reals / elements', () => {
    const f = renderIpvsFull(compile(base()));
    const p = renderIpvsIncremental(compile(base()), compile(changed()), f.marks);
    assert.equal(p.ipvs, G.IPVS_INCREMENTAL);
    assert.equal(p.nft, G.IPVS_INCREMENTAL_NFT);
    assert.equal(p.addrs, G.IPVS_INCREMENTAL_ADDRS);
  });
  test('drain = weight edit, not removal', () => {
    const f = renderIpvsFull(compile(base()));
    const d = base();
    d.services[0]!.backends[0]!.state = 'draining';
    const p = renderIpvsIncremental(compile(base()), compile(d), f.marks);
    assert.equal(p.ipvs, '-e -f 258 -r 10.0.1.4:8080 -m -w 0\n');
    assert.equal(p.nft, '');
  });
  test('assignMarks: stable, lowest free, never reuses a mark released in the same transition', () => {
    const c1 = compile(base());
    const m1 = assignMarks(new Map(), c1);
    assert.deepEqual([...m1.values()], [FWMARK_BASE, FWMARK_BASE + 1, FWMARK_BASE + 2, FWMARK_BASE + 3, FWMARK_BASE + 4, FWMARK_BASE + 5]);
    const m2 = assignMarks(m1, compile(changed()));
    assert.equal(m2.get('vip 10.9.0.10 tcp 80'), m1.get('vip 10.9.0.10 tcp 80'));
    assert.equal(m2.get('ingress tcp 8081'), undefined);
    assert.equal(m2.get('vip 10.9.0.13 tcp 5000'), FWMARK_BASE + 6);
    const m3 = assignMarks(m2, compile({ ...changed(), services: [...changed().services, { id: 'x', name: 'x', vip: '10.9.0.99', ports: [{ proto: 'tcp', port: 1, targetPort: 1 }], backends: [] }] }));
    assert.equal(m3.get('vip 10.9.0.99 tcp 1'), FWMARK_BASE + 1, 'mark 257 free again one sync later');
  });
});
