/**
 * Balancing choices (issue 19 §3): algorithms, weights (canary) and locality on both renderers,
 * golden-checked, plus the nft read-back of a real listing of the same state.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseNftLb } from '../../../src/adapters/dataplane/nft-parse.js';
import { renderIpvsFull, renderIpvsIncremental } from '../../../src/core/lb/ipvs-render.js';
import { compareKernel, expectedKernel, ipvsScheduler } from '../../../src/core/lb/kernel.js';
import { compile, reduceWeights, slotCounts, type LbDesired } from '../../../src/core/lb/model.js';
import { planNftFull, renderNftFull, renderNftIncremental } from '../../../src/core/lb/nftables-render.js';
import { MeshError } from '../../../src/core/errors.js';
import { b, balanced } from './fixtures.js';
import * as G from './golden.js';
import { NFT_BALANCED_LISTING } from './listing.js';

const front = (d: LbDesired, key: string) => compile(d).get(key)!;

describe('lb balance formulas', () => {
  test('reduceWeights', () => {
    for (const [ws, want] of [[[90, 10], [9, 1]], [[30, 30], null], [[45, 45, 10], [9, 9, 2]], [[7], null], [[], null]] as const) {
      assert.deepEqual(reduceWeights(ws), want, JSON.stringify(ws));
    }
  });
  test('slotCounts: proportional, at least one slot each, about 100 at most', () => {
    for (const [ws, want] of [[[9, 1], [9, 1]], [[999, 1], [100, 1]], [[1, 1, 2], [1, 1, 2]], [[9999, 1, 1], [100, 1, 1]]] as const) {
      assert.deepEqual(slotCounts(ws), want, JSON.stringify(ws));
    }
  });
  test('bad weight, algorithm or locality → MESHD_BAD_ARGUMENT naming the field', () => {
    const bad = (mut: (d: LbDesired) => void, path: string): void => {
      const d = balanced();
      mut(d);
      assert.throws(() => compile(d), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && (e.details as { path: string }).path === path);
    };
    bad((d) => (d.services[1]!.backends[0]!.weight = 0), 'services[1].backends[0].weight');
    bad((d) => (d.services[1]!.backends[0]!.weight = 1.5), 'services[1].backends[0].weight');
    bad((d) => (d.services[0]!.lb = { algorithm: 'least-conn' as never }), 'services[0].lb.algorithm');
    bad((d) => (d.ingress[1]!.lb = { locality: 'rack' as never }), 'ingress[1].lb.locality');
  });
});

describe('lb locality', () => {
  const loc = (locality: 'node' | 'zone' | 'none', states: Record<string, 'active' | 'draining'> = {}): { targets: string[]; draining: string[] } => {
    const d: LbDesired = {
      services: [],
      ingress: [{ service: 's', publishedPort: 1, proto: 'tcp', targetPort: 80, policy: 'cluster', lb: { locality }, backends: [
        b('n1', '10.0.0.1', states.n1 ?? 'active', true), { ...b('z1', '10.0.0.2', states.z1 ?? 'active'), sameZone: true }, b('o1', '10.0.0.3', states.o1 ?? 'active'),
      ] }],
    };
    const f = front(d, 'ingress tcp 1');
    return { targets: f.targets.map((t) => t.ip), draining: f.draining.map((t) => t.ip) };
  };
  test('node: the local task while it is active, then the zone, then any (spill)', () => {
    assert.deepEqual(loc('node'), { targets: ['10.0.0.1'], draining: ['10.0.0.2', '10.0.0.3'] });
    assert.deepEqual(loc('node', { n1: 'draining' }), { targets: ['10.0.0.2'], draining: ['10.0.0.1', '10.0.0.3'] });
    assert.deepEqual(loc('node', { n1: 'draining', z1: 'draining' }), { targets: ['10.0.0.3'], draining: ['10.0.0.1', '10.0.0.2'] });
  });
  test('zone: this node and its zone, then any; none: all', () => {
    assert.deepEqual(loc('zone'), { targets: ['10.0.0.1', '10.0.0.2'], draining: ['10.0.0.3'] });
    assert.deepEqual(loc('zone', { n1: 'draining', z1: 'draining' }), { targets: ['10.0.0.3'], draining: ['10.0.0.1', '10.0.0.2'] });
    assert.deepEqual(loc('none'), { targets: ['10.0.0.1', '10.0.0.2', '10.0.0.3'], draining: [] });
  });
});

describe('lb balance render (golden)', () => {
  const c = compile(balanced());
  test('nftables: per-algorithm sets and pick maps; weighted slots repeat targets', () => {
    const s = renderNftFull(c);
    assert.equal(s, G.NFT_BALANCED_FULL);
    assert.match(s, /map vips-rr \{\n\t\ttype ipv4_addr \. inet_proto \. inet_service : mark\n\t\tsize 256\n\t\telements = \{ 10\.9\.0\.20 \. tcp \. 80 comment "rr tcp\/80" : 0x00010002 \}/);
    assert.match(s, /map ingress-sh \{[^}]*elements = \{ tcp \. 9000 comment "svc-sh tcp\/9000 cluster" : 0x00016003 \}/);
    assert.match(s, /map pick-rr \{\n\t\ttype mark : verdict\n\t\telements = \{ 0x00000002 : goto pick-rr-vip-tcp-2 \}/);
    assert.match(s, /map pick-sh \{\n\t\ttype mark : verdict\n\t\telements = \{ 0x00006003 : goto pick-sh-ing-tcp-3-masq \}/);
    assert.match(s, /chain pick-rr-vip-tcp-2 \{\n\t\tnumgen inc mod 2 vmap @slots\n\t\tgoto vip-dnat-tcp\n\t\}/);
    assert.match(s, /chain pick-sh-ing-tcp-3-masq \{\n\t\tjhash ip saddr mod 3 seed 0x6d657368 vmap @slots\n\t\tgoto ingress-dnat-tcp\n\t\}/);
    // canary 45/45/10 → 9/9/2 → 20 slots: 9 × .11, 9 × .12, 2 × .13
    assert.match(s, /10\.9\.0\.21 \. tcp \. 80 comment "canary tcp\/80" : 0x00020014/);
    assert.match(s, /chain pick-vip-tcp-20 \{\n\t\tnumgen random mod 20 vmap @slots/);
    const canary = s.match(/0x0002(00[0-9a-f]{2}) : (10\.0\.2\.1\d)/g) ?? [];
    const count = (ip: string): number => canary.filter((x) => x.endsWith(ip)).length;
    assert.deepEqual([count('10.0.2.11'), count('10.0.2.12'), count('10.0.2.13')], [9, 9, 2]);
    // locality node: only the local task has a slot
    assert.match(s, /tcp \. 9001 comment "svc-loc tcp\/9001 cluster" : 0x00026001/);
  });
  test('nftables read-back of the real listing: algorithms and weighted slots, in sync', () => {
    const actual = { backend: 'nftables' as const, frontends: parseNftLb(NFT_BALANCED_LISTING) };
    assert.deepEqual(compareKernel(expectedKernel(c, 'nftables'), actual), []);
    assert.equal(actual.frontends.find((f) => f.key === 'ingress tcp 9000')?.algorithm, 'source-hash');
    assert.equal(actual.frontends.find((f) => f.key === 'vip 10.9.0.21 tcp 80')?.targets.length, 20);
    const flipped = { ...actual, frontends: actual.frontends.map((f) => (f.key === 'ingress tcp 9000' ? { ...f, algorithm: undefined } : f)) };
    assert.deepEqual(compareKernel(expectedKernel(c, 'nftables'), flipped), ['ingress tcp 9000: algorithm random, want source-hash']);
  });
  test('nftables incremental: algorithm change moves the element to the other set and pick chain; canary → 100 % is a re-slot', () => {
    const d = balanced();
    d.services[0]!.lb = { algorithm: 'source-hash' };
    assert.equal(renderNftIncremental(c, compile(d), undefined, planNftFull(c).state), [
      'add chain ip meshd-lb pick-sh-vip-tcp-2',
      'add rule ip meshd-lb pick-sh-vip-tcp-2 jhash ip saddr mod 2 seed 0x6d657368 vmap @slots',
      'add rule ip meshd-lb pick-sh-vip-tcp-2 goto vip-dnat-tcp',
      'add element ip meshd-lb pick-sh { 0x00000002 : goto pick-sh-vip-tcp-2 }',
      'delete element ip meshd-lb vips-rr { 10.9.0.20 . tcp . 80 }',
      'add element ip meshd-lb vips-sh { 10.9.0.20 . tcp . 80 comment "rr tcp/80" : 0x00010002 }',
      'delete element ip meshd-lb pick-rr { 0x00000002 }',
      'flush chain ip meshd-lb pick-rr-vip-tcp-2',
      'delete chain ip meshd-lb pick-rr-vip-tcp-2',
      '',
    ].join('\n'));
    const e = balanced();
    e.services[1]!.backends = e.services[1]!.backends.map((x) => ({ id: x.id, ip: x.ip, state: x.state }));
    const s = renderNftIncremental(c, compile(e), undefined, planNftFull(c).state);
    assert.match(s, /delete element ip meshd-lb vips \{ 10\.9\.0\.21 \. tcp \. 80 \}/);
    assert.match(s, /add element ip meshd-lb vips \{ 10\.9\.0\.21 \. tcp \. 80 comment "canary tcp\/80" : 0x00020003 \}/);
  });
  test('ipvs: sh for source-hash, wrr with weights, rr otherwise; locality losers at weight 0', () => {
    assert.equal(renderIpvsFull(c).ipvs, [
      '-A -f 256 -s sh', '-a -f 256 -r 10.0.2.21:80 -m -w 1', '-a -f 256 -r 10.0.2.22:80 -m -w 1', '-a -f 256 -r 10.0.2.23:80 -m -w 1',
      '-A -f 257 -s rr', '-a -f 257 -r 10.0.2.31:80 -m -w 1', '-a -f 257 -r 10.0.2.32:80 -m -w 0', '-a -f 257 -r 10.0.2.33:80 -m -w 0',
      '-A -f 258 -s rr', '-a -f 258 -r 10.0.2.1:80 -m -w 1', '-a -f 258 -r 10.0.2.2:80 -m -w 1',
      '-A -f 259 -s wrr', '-a -f 259 -r 10.0.2.11:80 -m -w 9', '-a -f 259 -r 10.0.2.12:80 -m -w 9', '-a -f 259 -r 10.0.2.13:80 -m -w 2',
      '',
    ].join('\n'));
    assert.equal(ipvsScheduler({ algorithm: 'round-robin' }), 'rr');
    assert.equal(ipvsScheduler({ weights: [1, 2] }), 'wrr');
    assert.equal(ipvsScheduler({ algorithm: 'source-hash', weights: [1, 2] }), 'sh');
  });
  test('ipvs incremental: a canary weight change re-weights reals; dropping weights edits the scheduler back to rr', () => {
    const m = renderIpvsFull(c).marks;
    const d = balanced();
    d.services[1]!.backends[2]!.weight = 20; // 45/45/20 → 9/9/4
    assert.equal(renderIpvsIncremental(c, compile(d), m).ipvs, '-e -f 259 -r 10.0.2.13:80 -m -w 4\n');
    const e = balanced();
    e.services[1]!.backends = e.services[1]!.backends.map((x) => ({ id: x.id, ip: x.ip, state: x.state }));
    assert.equal(renderIpvsIncremental(c, compile(e), m).ipvs, ['-E -f 259 -s rr', '-e -f 259 -r 10.0.2.11:80 -m -w 1', '-e -f 259 -r 10.0.2.12:80 -m -w 1', '-e -f 259 -r 10.0.2.13:80 -m -w 1', ''].join('\n'));
  });
  test('ipvs read-back compare: scheduler and weights are drift when they differ', () => {
    const exp = expectedKernel(c, 'ipvs');
    const act = { ...exp, frontends: exp.frontends.map((f) => (f.key === 'vip 10.9.0.21 tcp 80' ? { ...f, scheduler: 'rr', weights: [1, 1, 1] } : f)) };
    assert.deepEqual(compareKernel(exp, act), [
      'vip 10.9.0.21 tcp 80: IPVS scheduler rr, want wrr',
      'vip 10.9.0.21 tcp 80: weights 10.0.2.11:80=1,10.0.2.12:80=1,10.0.2.13:80=1, want 10.0.2.11:80=9,10.0.2.12:80=9,10.0.2.13:80=2',
    ]);
  });
});
