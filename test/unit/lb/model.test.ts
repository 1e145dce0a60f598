import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isMeshError } from '../../../src/core/errors.js';
import { diffCompiled, diffSets, diffSize, isEmptyDiff } from '../../../src/core/lb/diff.js';
import { compareKernel, expectedKernel } from '../../../src/core/lb/kernel.js';
import { compile, isIPv4, validateDesired, type LbDesired } from '../../../src/core/lb/model.js';
import { b, base, changed } from './fixtures.js';

function throwsAt(d: LbDesired, path: RegExp): void {
  assert.throws(() => compile(d), (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT' && path.test(String(e.details?.path)));
}

describe('lb model validation', () => {
  const cases: [string, (d: LbDesired) => void, RegExp][] = [
    ['bad vip', (d) => (d.services[0]!.vip = '10.9.0.300'), /services\[0\]\.vip/],
    ['zero vip', (d) => (d.services[0]!.vip = '0.0.0.0'), /services\[0\]\.vip/],
    ['bad port', (d) => (d.services[0]!.ports[0]!.port = 0), /ports\[0\]\.port/],
    ['bad targetPort', (d) => (d.services[0]!.ports[0]!.targetPort = 70000), /ports\[0\]\.targetPort/],
    ['bad proto', (d) => ((d.services[0]!.ports[0] as { proto: string }).proto = 'sctp'), /ports\[0\]\.proto/],
    ['dup port', (d) => d.services[0]!.ports.push({ proto: 'tcp', port: 80, targetPort: 1 }), /services\[0\]\.ports\[1\]/],
    ['dup service id', (d) => (d.services[1]!.id = 'svc-web'), /services\[1\]\.id/],
    ['quote in name', (d) => (d.services[0]!.name = 'a"b'), /services\[0\]\.name/],
    ['bad backend ip', (d) => (d.services[0]!.backends[0]!.ip = 'x'), /backends\[0\]\.ip/],
    ['dup backend id', (d) => (d.services[0]!.backends[1]!.id = 't3'), /backends\[1\]\.id/],
    ['dup backend ip', (d) => (d.services[0]!.backends[1]!.ip = '10.0.1.4'), /backends\[1\]\.ip/],
    ['bad state', (d) => ((d.services[0]!.backends[0] as { state: string }).state = 'gone'), /backends\[0\]\.state/],
    ['bad policy', (d) => ((d.ingress[0] as { policy: string }).policy = 'any'), /ingress\[0\]\.policy/],
    ['bad published port', (d) => (d.ingress[0]!.publishedPort = -1), /ingress\[0\]\.publishedPort/],
    ['too many backends', (d) => (d.services[0]!.backends = Array.from({ length: 4097 }, (_, i) => b(`x${i}`, `10.1.${i >> 8}.${i & 255}`))), /services\[0\]\.backends/],
    ['VIP:port conflict', (d) => (d.services[1]!.vip = '10.9.0.10', d.services[1]!.ports = [{ proto: 'tcp', port: 80, targetPort: 80 }]), /^services\[1\]$/],
    ['published port conflict', (d) => (d.ingress[1]!.publishedPort = 8080), /ingress\[1\]/],
  ];
  for (const [name, mutate, path] of cases) {
    test(name, () => {
      const d = base();
      mutate(d);
      throwsAt(d, path);
    });
  }
  test('not an object', () => {
    assert.throws(() => validateDesired({} as LbDesired), /services\[\] and ingress\[\]/);
  });
  test('isIPv4 table', () => {
    for (const [s, ok] of [['10.0.0.1', true], ['255.255.255.255', true], ['1.2.3', false], ['01.2.3.4', false], ['1.2.3.4 ', false], ['256.1.1.1', false]] as const) assert.equal(isIPv4(s), ok, s);
  });
});

describe('lb compile', () => {
  const c = compile(base());
  test('frontends keyed and sorted; dnsrr service produces none', () => {
    assert.deepEqual([...c.keys()].sort(), ['ingress tcp 8080', 'ingress tcp 8081', 'vip 10.9.0.10 tcp 80', 'vip 10.9.0.11 tcp 53', 'vip 10.9.0.11 udp 53', 'vip 10.9.0.12 tcp 443']);
  });
  test('active targets sorted by address, draining split out, targetPort applied', () => {
    const web = c.get('vip 10.9.0.10 tcp 80')!;
    assert.deepEqual(web.targets, [{ ip: '10.0.1.2', port: 8080 }, { ip: '10.0.1.4', port: 8080 }]);
    assert.deepEqual(web.draining, [{ ip: '10.0.1.3', port: 8080 }]);
    assert.equal(web.masquerade, false);
  });
  test('ingress cluster masquerades; local keeps only local tasks and does not', () => {
    assert.equal(c.get('ingress tcp 8080')!.masquerade, true);
    const local = c.get('ingress tcp 8081')!;
    assert.equal(local.masquerade, false);
    assert.deepEqual(local.targets, [{ ip: '10.0.1.2', port: 8080 }]);
  });
  test('a service whose tasks all drain has no targets (new connections rejected)', () => {
    const d = base();
    d.services[0]!.backends = [b('t1', '10.0.1.2', 'draining')];
    assert.deepEqual(compile(d).get('vip 10.9.0.10 tcp 80')!.targets, []);
  });
});

describe('lb compile memo', () => {
  test('unchanged service objects yield the same frontend objects; a replaced one is recompiled and revalidated', () => {
    const memo = new WeakMap();
    const d1 = base();
    const c1 = compile(d1, memo);
    const d2 = { ...d1, services: [...d1.services] };
    d2.services[0] = { ...d1.services[0]!, backends: [b('t1', '10.0.1.2')] };
    const c2 = compile(d2, memo);
    assert.equal(c2.get('vip 10.9.0.11 udp 53'), c1.get('vip 10.9.0.11 udp 53'));
    assert.notEqual(c2.get('vip 10.9.0.10 tcp 80'), c1.get('vip 10.9.0.10 tcp 80'));
    assert.deepEqual(diffCompiled(c1, c2).changed.map((x) => x.after.key), ['vip 10.9.0.10 tcp 80']);
    d2.services[1] = { ...d1.services[1]!, vip: 'bad' };
    throwsAt(d2, /services\[1\]\.vip/);
    assert.throws(() => compile(d2, memo), /services\[1\]\.vip/);
  });
  test('cross-service checks still run for memoized services', () => {
    const memo = new WeakMap();
    const d = base();
    compile(d, memo);
    assert.throws(() => compile({ ...d, services: [...d.services, d.services[0]!] }, memo), /duplicate service id/);
  });
});

describe('lb diff', () => {
  test('added / removed / changed by key', () => {
    const d = diffCompiled(compile(base()), compile(changed()));
    assert.deepEqual(d.added.map((f) => f.key), ['vip 10.9.0.13 tcp 5000']);
    assert.deepEqual(d.removed.map((f) => f.key), ['ingress tcp 8081']);
    assert.deepEqual(d.changed.map((x) => x.after.key), ['vip 10.9.0.10 tcp 80', 'vip 10.9.0.11 tcp 53', 'vip 10.9.0.11 udp 53', 'vip 10.9.0.12 tcp 443']);
    assert.equal(diffSize(d), 6);
  });
  test('identical states → empty diff; reordered backends are not a change', () => {
    const d2 = base();
    d2.services[0]!.backends.reverse();
    assert.ok(isEmptyDiff(diffCompiled(compile(base()), compile(d2))));
  });
  test('diffSets', () => {
    assert.deepEqual(diffSets(new Set([1, 2]), new Set([2, 3])), { add: [3], del: [1] });
  });
});

describe('lb kernel comparison', () => {
  test('expected vs itself is in sync; differences are named', () => {
    const e = expectedKernel(compile(base()), 'nftables');
    assert.deepEqual(compareKernel(e, e), []);
    const a = expectedKernel(compile(changed()), 'nftables');
    const diffs = compareKernel(e, a);
    assert.ok(diffs.includes('missing ingress tcp 8081'), diffs.join('\n'));
    assert.ok(diffs.includes('unexpected vip 10.9.0.13 tcp 5000'), diffs.join('\n'));
    assert.ok(diffs.some((x) => x.startsWith('vip 10.9.0.10 tcp 80: targets')), diffs.join('\n'));
  });
  test('masquerade is compared only where there are targets (an empty frontend has nothing to masquerade)', () => {
    const fe = (targets: Array<{ ip: string; port: number }>, masquerade: boolean) => ({
      backend: 'nftables' as const,
      frontends: [{ key: 'ingress tcp 8080', kind: 'ingress' as const, proto: 'tcp' as const, port: 8080, targets, draining: [], masquerade }],
    });
    assert.deepEqual(compareKernel(fe([], true), fe([], false)), [], 'scaled to 0: the kernel keeps no masquerade bit');
    const t = [{ ip: '10.0.0.5', port: 80 }];
    assert.deepEqual(compareKernel(fe(t, true), fe(t, false)), ['ingress tcp 8080: masquerade false, want true']);
  });
});
