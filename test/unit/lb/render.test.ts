import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assignMarks, FWMARK_BASE, renderIpvsFull, renderIpvsIncremental, resyncMarks } from '../../../src/core/lb/ipvs-render.js';
import { parseIpvsSaveText } from '../../../src/core/lb/ipvs-save.js';
import { compile } from '../../../src/core/lb/model.js';
import { elementKey, frontMark, hexMark, pickChain, pickValue, planNftFull, planNftIncremental, slotKey, slotRule, renderNftFlush, renderNftFull, renderNftIncremental } from '../../../src/core/lb/nftables-render.js';
import { applyNftDelta, MAX_FRONTEND_ID, setSize } from '../../../src/core/lb/nft-state.js';
import { b, base, changed, hostMode } from './fixtures.js';
import * as G from './golden.js';

describe('nftables render (golden)', () => {
  test('full sync: one transaction that deletes and redefines the table', () => {
    assert.equal(renderNftFull(compile(base())), G.NFT_FULL);
  });
  test('incremental: only changed elements and pick chains', () => {
    assert.equal(renderNftIncremental(compile(base()), compile(changed())), G.NFT_INCREMENTAL);
  });
  test('no change → empty script', () => {
    assert.equal(renderNftIncremental(compile(base()), compile(base())), '');
  });
  test('one endpoint added: the frontend element moves to the next pick chain, plus one slot (and its slot chain)', () => {
    const d = base();
    d.services[0]!.backends.push(b('t9', '10.0.1.9'));
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.equal(s, [
      'add chain ip meshd-lb slot-2',
      'add rule ip meshd-lb slot-2 meta mark set meta mark & 0xffffe000 | 2',
      'add element ip meshd-lb slots { 2 : jump slot-2 }',
      'add chain ip meshd-lb pick-vip-tcp-3',
      'add rule ip meshd-lb pick-vip-tcp-3 numgen random mod 3 vmap @slots',
      'add rule ip meshd-lb pick-vip-tcp-3 goto vip-dnat-tcp',
      'add element ip meshd-lb pick { 0x00000003 : goto pick-vip-tcp-3 }',
      'delete element ip meshd-lb vips { 10.9.0.10 . tcp . 80 }',
      'add element ip meshd-lb vips { 10.9.0.10 . tcp . 80 comment "web tcp/80" : 0x00010003 }',
      'add element ip meshd-lb vip-targets-tcp { 0x00010002 : 10.0.1.9 }',
      'delete element ip meshd-lb pick { 0x00000002 }',
      'flush chain ip meshd-lb pick-vip-tcp-2',
      'delete chain ip meshd-lb pick-vip-tcp-2',
      '',
    ].join('\n'));
  });
  test('a pick chain still used by another frontend is neither added nor removed', () => {
    const d = base();
    d.services[0]!.backends = [b('t3', '10.0.1.4'), b('t2', '10.0.1.3', 'draining')]; // web: 2 → 1, like dns tcp/53
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.doesNotMatch(s, /add chain|add element ip meshd-lb pick/);
    assert.match(s, /delete chain ip meshd-lb pick-vip-tcp-2\n$/);
    assert.match(s, /add element ip meshd-lb vips \{ 10\.9\.0\.10 \. tcp \. 80 comment "web tcp\/80" : 0x00010001 \}/);
  });
  test('one endpoint replaced (same count): slot element changes only (cost ∝ change)', () => {
    const d = base();
    d.services[0]!.backends[0] = b('t5', '10.0.1.7'); // 10.0.1.4 → 10.0.1.7, both sort after 10.0.1.2
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.equal(s, [
      'delete element ip meshd-lb vip-targets-tcp { 0x00010001 }',
      'add element ip meshd-lb vip-targets-tcp { 0x00010001 : 10.0.1.7 }',
      '',
    ].join('\n'));
  });
  test('target port change on a VIP: one vip-ports element, no slot rewrite', () => {
    const d = base();
    d.services[0]!.ports = [{ proto: 'tcp', port: 80, targetPort: 9090 }];
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.equal(s, 'delete element ip meshd-lb vip-ports-tcp { 0x00010000 }\nadd element ip meshd-lb vip-ports-tcp { 0x00010000 : 9090 }\n');
  });
  test('draining a backend removes it from selection only', () => {
    const d = base();
    d.services[0]!.backends[0]!.state = 'draining'; // t3 10.0.1.4
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.match(s, /vips \{ 10\.9\.0\.10 \. tcp \. 80 comment "web tcp\/80" : 0x00010001 \}/);
    assert.match(s, /delete element ip meshd-lb vip-targets-tcp \{ 0x00010001 \}/);
  });
  test('only draining backends changed → nothing to send', () => {
    const d = base();
    d.services[0]!.backends = d.services[0]!.backends.filter((x) => x.state === 'active');
    assert.equal(renderNftIncremental(compile(base()), compile(d)), '');
  });
  test('last backend drains → frontend moves to empty-vips, its now unused pick chain goes', () => {
    const d = base();
    d.services[1]!.backends = [b('d1', '10.0.1.20', 'draining')];
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.match(s, /add element ip meshd-lb empty-vips \{ 10\.9\.0\.11 \. udp \. 53 comment "dns udp\/53" \}/);
    assert.match(s, /delete element ip meshd-lb vips \{ 10\.9\.0\.11 \. udp \. 53 \}\n/);
    assert.ok(s.indexOf('delete element ip meshd-lb pick { 0x00008001 }') < s.indexOf('delete chain ip meshd-lb pick-vip-udp-1'));
    assert.match(s, /delete chain ip meshd-lb pick-vip-tcp-1\n/, 'dns tcp/53 was the only frontend with one tcp target');
    assert.doesNotMatch(s, /pick-vip-tcp-2/, 'web keeps its pick chain');
  });
  test('ingress policy flip cluster → local re-keys every slot (front mark without the masquerade bit) and moves pick chain', () => {
    const d = base();
    d.ingress[0]!.policy = 'local';
    d.ingress[0]!.backends = d.ingress[0]!.backends.map((x) => ({ ...x, local: true }));
    const s = renderNftIncremental(compile(base()), compile(d));
    assert.equal(s, [
      'add chain ip meshd-lb pick-ing-tcp-2',
      'add rule ip meshd-lb pick-ing-tcp-2 numgen random mod 2 vmap @slots',
      'add rule ip meshd-lb pick-ing-tcp-2 goto ingress-dnat-tcp',
      'add element ip meshd-lb pick { 0x00002002 : goto pick-ing-tcp-2 }',
      'delete element ip meshd-lb ingress { tcp . 8080 }',
      'delete element ip meshd-lb ingress-targets-tcp { 0x00016000, 0x00016001 }',
      'add element ip meshd-lb ingress { tcp . 8080 comment "svc-web tcp/8080 local" : 0x00012002 }',
      'add element ip meshd-lb ingress-targets-tcp { 0x00012000 : 10.0.1.2 . 8080, 0x00012001 : 10.0.1.4 . 8080 }',
      'delete element ip meshd-lb pick { 0x00006002 }',
      'flush chain ip meshd-lb pick-ing-tcp-2-masq',
      'delete chain ip meshd-lb pick-ing-tcp-2-masq',
      '',
    ].join('\n'));
  });
  test('names, keys and pick numbers', () => {
    assert.equal(pickChain({ kind: 'vip', proto: 'udp', masquerade: false, targets: { length: 3 } }), 'pick-vip-udp-3');
    assert.equal(pickChain({ kind: 'ingress', proto: 'tcp', masquerade: true, targets: { length: 2 } }), 'pick-ing-tcp-2-masq');
    assert.equal(pickValue({ kind: 'vip', proto: 'tcp', masquerade: false, targets: { length: 1 } }), 1);
    assert.equal(pickValue({ kind: 'ingress', proto: 'udp', masquerade: true, targets: { length: 4096 } }), 0x2000 | 0x8000 | 0x4000 | 4096);
    assert.equal(hexMark(0x24002), '0x00024002');
    assert.equal(hexMark(0xffff0000), '0xffff0000', 'ids ≥ 0x8000 stay unsigned');
    assert.equal(frontMark({ kind: 'vip', proto: 'tcp', masquerade: false }, 0xffff), 0xffff0000);
    assert.equal(slotKey({ kind: 'ingress', proto: 'udp', masquerade: false }, 2, 4), '0x0002a004');
    assert.equal(slotKey({ kind: 'ingress', proto: 'udp', masquerade: true }, 2, 4), '0x0002e004', 'cluster slots carry the masquerade bit');
    assert.equal(slotKey({ kind: 'vip', proto: 'tcp', masquerade: false }, 1, 0), '0x00010000');
    assert.equal(slotRule(3), 'meta mark set meta mark & 0xffffe000 | 3');
    assert.equal(elementKey({ kind: 'vip', vip: '10.1.2.3', proto: 'udp', port: 53 }), '10.1.2.3 . udp . 53');
    assert.equal(renderNftFlush(), 'table ip meshd-lb\ndelete table ip meshd-lb\ntable ip6 meshd-lb6\ndelete table ip6 meshd-lb6\n');
  });
  test('empty desired state renders a valid skeleton with no frontend chains', () => {
    const s = renderNftFull(compile({ services: [], ingress: [] }));
    assert.doesNotMatch(s, /chain pick-/);
    assert.doesNotMatch(s, /elements/);
  });
});

describe('nftables state: frontend ids and sized sets', () => {
  test('full sync numbers ids per pool in key order and sizes sets with room to double', () => {
    const { state } = planNftFull(compile(base()));
    assert.equal(state.ids.get('ingress tcp 8080'), 1);
    assert.equal(state.ids.get('vip 10.9.0.10 tcp 80'), 1);
    assert.equal(state.ids.get('vip 10.9.0.12 tcp 443'), 3);
    assert.equal(state.ids.get('vip 10.9.0.11 udp 53'), 1, 'ids are per pool (vip-targets-udp)');
    assert.equal(state.slotChains, 2);
    assert.equal(state.counts.get('vip-targets-tcp'), 3);
    assert.equal(state.sizes.get('vip-targets-tcp'), 256);
    assert.deepEqual([setSize(0), setSize(128), setSize(129), setSize(100_000)], [256, 256, 512, 262_144]);
  });
  test('a removed frontend releases its id; it is reused by a later sync, never in the same one', () => {
    const a = compile(base());
    const { state } = planNftFull(a);
    const d = base();
    d.services = d.services.filter((s) => s.id !== 'svc-api');
    const c = compile(d);
    const p1 = planNftIncremental(a, c, state)!;
    assert.deepEqual(p1.delta.released, [{ key: 'vip 10.9.0.12 tcp 443', pool: 'vip-targets-tcp', id: 3 }]);
    applyNftDelta(state, p1.delta);
    assert.equal(state.ids.has('vip 10.9.0.12 tcp 443'), false);
    const d2 = base();
    d2.services[2] = { ...d2.services[2]!, id: 'svc-api2', vip: '10.9.0.14', backends: [b('x1', '10.0.1.70')] };
    const p2 = planNftIncremental(c, compile(d2), state)!;
    assert.match(p2.script, /add element ip meshd-lb vip-targets-tcp \{ 0x00030000 : 10\.0\.1\.70 \}/);
    applyNftDelta(state, p2.delta);
    assert.equal(state.ids.get('vip 10.9.0.14 tcp 443'), 3);
    assert.deepEqual(state.free.get('vip-targets-tcp'), []);
  });
  test('an incremental sync that would overflow a sized set returns null (the syncer then syncs fully)', () => {
    const a = compile(base());
    const { state } = planNftFull(a);
    state.sizes.set('vip-targets-tcp', 3); // full: exactly 3 tcp VIP slots
    const d = base();
    d.services[0]!.backends.push(b('t9', '10.0.1.9'));
    assert.equal(planNftIncremental(a, compile(d), state), null);
    assert.throws(() => renderNftIncremental(a, compile(d), undefined, state), RangeError);
  });
  test('frontend ids run out at 16 bits', () => {
    assert.equal(MAX_FRONTEND_ID, 0xffff);
    const a = compile(base());
    const { state } = planNftFull(a);
    state.next.set('vip-targets-tcp', MAX_FRONTEND_ID + 1);
    const d = base();
    d.services.push({ id: 'svc-x', name: 'x', vip: '10.9.0.99', ports: [{ proto: 'tcp', port: 1, targetPort: 1 }], backends: [] });
    assert.throws(() => planNftIncremental(a, compile(d), state), /more than 65535 frontends in vip-targets-tcp/);
  });
});

describe('ipvs render (golden)', () => {
  test('full into an empty namespace: fwmark services, reals (draining at weight 0), mark table, VIP addresses; never -C', () => {
    const p = renderIpvsFull(compile(base()));
    assert.equal(p.ipvs, G.IPVS_FULL);
    assert.equal(p.nft, G.IPVS_FULL_NFT);
    assert.equal(p.addrs, G.IPVS_FULL_ADDRS);
  });
  test('full resync against a drifted kernel: only the difference (add, edit, delete), never -C', () => {
    const marks = assignMarks(new Map(), compile(base()));
    const p = renderIpvsFull(compile(base()), new Map(), { services: parseIpvsSaveText(G.IPVS_DRIFTED_SAVE), marks });
    assert.equal(p.ipvs, G.IPVS_RESYNC);
    assert.doesNotMatch(p.ipvs, /^-C/m);
    assert.equal(p.nft, G.IPVS_FULL_NFT, 'same marks: the mark table is rewritten identical, in one transaction');
    assert.equal(p.addrs, G.IPVS_FULL_ADDRS);
  });
  test('full resync of a kernel that already matches: empty IPVS script', () => {
    const f = renderIpvsFull(compile(base()));
    const p = renderIpvsFull(compile(base()), new Map(), { services: parseIpvsSaveText(f.ipvs), marks: f.marks });
    assert.equal(p.ipvs, '');
  });
  test('full resync keeps the marks the kernel uses (an agent restart renumbers nothing under live connections)', () => {
    const vip = 'vip 10.9.0.10 tcp 80';
    const save = '-A -f 700 -s rr\n-a -f 700 -r 10.0.1.2:8080 -m -w 1\n-a -f 700 -r 10.0.1.4:8080 -m -w 1\n-a -f 700 -r 10.0.1.3:8080 -m -w 0\n';
    // the syncer remembers 258 for another key: the kernel's 700 wins for the VIP, 258 stays with its key
    const p = renderIpvsFull(compile(base()), new Map([['ingress tcp 8081', 258]]), { services: parseIpvsSaveText(save), marks: new Map([[vip, 700]]) });
    assert.equal(p.marks.get(vip), 700);
    assert.equal(p.marks.get('ingress tcp 8081'), 258);
    assert.doesNotMatch(p.ipvs, /-f 700/, p.ipvs);
    assert.match(p.nft, /10\.9\.0\.10 \. tcp \. 80 : 700/);
    assert.deepEqual(resyncMarks(new Map([['a', 256], ['b', 300]]), { services: [], marks: new Map([['b', 256], ['c', 256]]) }), new Map([['b', 256]]), 'a kernel mark is never given two keys');
  });
  test('ipvsadm -S -n parser: specs, scheduler, extra flags, forward method', () => {
    const s = parseIpvsSaveText('-A -t 1.2.3.4:80 -s wlc -p 300\n-a -t 1.2.3.4:80 -r 10.0.0.1:80 -g -w 3\n-a -f 9 -r 10.0.0.2:81 -m -w 0\nnonsense\n');
    assert.deepEqual(s, [
      { spec: '-t 1.2.3.4:80', fwmark: null, scheduler: 'wlc', extra: '-p 300', reals: [{ ip: '10.0.0.1', port: 80, weight: 3, forward: 'g' }] },
      { spec: '-f 9', fwmark: 9, scheduler: '', extra: '', reals: [{ ip: '10.0.0.2', port: 81, weight: 0, forward: 'm' }] },
    ]);
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

describe('host publish mode (golden): the node namespace DNATs straight to its local tasks', () => {
  test('nftables: a local-only ingress frontend, no masquerade bit, draining task left out', () => {
    const s = renderNftFull(compile(hostMode()));
    assert.equal(s, G.NFT_HOST_FULL);
    assert.doesNotMatch(s, /offset 16384|8080 \. 1638\d/, 'host mode never masquerades: the task sees the client');
  });
  test('ipvs: a fwmark service with the local tasks (draining at weight 0), not in snat-marks', () => {
    const p = renderIpvsFull(compile(hostMode()));
    assert.equal(p.ipvs, G.IPVS_HOST_FULL);
    assert.equal(p.nft, G.IPVS_HOST_FULL_NFT);
    assert.equal(p.addrs, '', 'no VIP address on lo');
  });
  test('host mode must be local; remote tasks are never picked', () => {
    const d = hostMode();
    d.ingress[0]!.policy = 'cluster';
    assert.throws(() => compile(d), /policy must be local/);
    const e = hostMode();
    e.ingress[0]!.backends.push(b('far', '10.0.1.70', 'active', false));
    assert.deepEqual(compile(e).get('ingress tcp 8080')!.targets.map((t) => t.ip), ['10.0.1.60', '10.0.1.61']);
  });
});
