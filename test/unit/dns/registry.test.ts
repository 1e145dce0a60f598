import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DnsRegistry, isValidDnsName } from '../../../src/core/dns/registry.js';
import { MeshError } from '../../../src/core/errors.js';

function task(name: string, ip: string, extra: Partial<{ healthy: boolean; owner: string; service: string; network: string }> = {}) {
  return { name, ip, network: extra.network ?? 'app', service: extra.service ?? 'web', healthy: extra.healthy ?? true, owner: extra.owner ?? 'n1' };
}

describe('dns registry', () => {
  test('generation moves on every effective change and not on no-op upserts', () => {
    const r = new DnsRegistry();
    assert.equal(r.generation, 0);
    assert.equal(r.upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.0.2' }, 1), true);
    const g1 = r.generation;
    assert.equal(r.upsertService({ name: 'WEB', network: 'app', mode: 'vip', vip: '10.0.0.2' }, 2), false);
    assert.equal(r.generation, g1);
    assert.equal(r.upsertTask(task('web.1.a', '10.0.0.3'), 3), true);
    assert.equal(r.upsertTask(task('web.1.a', '10.0.0.3'), 4), false);
    const g2 = r.generation;
    assert.ok(g2 > g1);
    assert.equal(r.upsertTask(task('web.1.a', '10.0.0.3', { healthy: false }), 5), true);
    assert.ok(r.generation > g2);
    const g3 = r.generation;
    assert.equal(r.removeTask('app', 'web.1.x'), false);
    assert.equal(r.generation, g3);
    assert.equal(r.removeTask('app', 'WEB.1.A'), true);
    assert.ok(r.generation > g3);
    assert.equal(r.removeService('app', 'web'), true);
    assert.deepEqual(r.networks(), []);
  });

  test('updatedAt records the injected now of the last change', () => {
    const r = new DnsRegistry();
    r.upsertTask(task('web.1.a', '10.0.0.3'), 100);
    r.upsertTask(task('web.1.a', '10.0.0.3'), 200); // no-op keeps 100
    assert.equal(r.tasks('app')[0]!.updatedAt, 100);
    r.upsertTask(task('web.1.a', '10.0.0.4'), 300);
    assert.equal(r.tasks('app')[0]!.updatedAt, 300);
  });

  test('removeOwner drops that node’s tasks and owned services in one generation step', () => {
    const r = new DnsRegistry();
    r.upsertService({ name: 'web', network: 'app', mode: 'dnsrr' }, 0);
    r.upsertService({ name: 'db', network: 'app', mode: 'vip', vip: '10.0.0.9', owner: 'n2' }, 0);
    r.upsertTask(task('web.1.a', '10.0.0.3', { owner: 'n1' }), 0);
    r.upsertTask(task('web.2.b', '10.0.0.4', { owner: 'n2' }), 0);
    r.upsertTask(task('web.3.c', '10.0.1.4', { owner: 'n2', network: 'other' }), 0);
    const g = r.generation;
    assert.equal(r.removeOwner('n2'), 3);
    assert.equal(r.generation, g + 1);
    assert.deepEqual(r.tasks('app').map((t) => t.name), ['web.1.a']);
    assert.deepEqual(r.services('app').map((s) => s.name), ['web']);
    assert.deepEqual(r.networks(), ['app']);
    assert.equal(r.removeOwner('n9'), 0);
    assert.equal(r.generation, g + 1);
  });

  test('view: precedence service > alias > task; shared alias is a union; VIP wins PTR', () => {
    const r = new DnsRegistry();
    r.upsertTask(task('api', '10.0.0.50', { service: 'x' }), 0); // a task literally named like a service
    r.upsertService({ name: 'api', network: 'app', mode: 'vip', vip: '10.0.0.5', aliases: ['shared'] }, 0);
    r.upsertService({ name: 'api2', network: 'app', mode: 'vip', vip: '10.0.0.6', aliases: ['shared', 'API2'] }, 0);
    const v = r.view('app')!;
    assert.equal(v.name('api')?.kind, 'service');
    const shared = v.name('shared');
    assert.ok(shared?.kind === 'service' && shared.via === 'alias');
    assert.deepEqual(shared.services.map((s) => s.name), ['api', 'api2']);
    assert.deepEqual(r.services('app')[1]!.aliases, ['shared']); // alias equal to own name (any case) dropped
    assert.equal(v.ptr('10.0.0.5')?.kind, 'vip');
    assert.equal(v.ptr('10.0.0.50')?.kind, 'task');
    assert.equal(v.ptr('10.0.0.7'), undefined);
    assert.equal(r.view('nope'), undefined);
  });

  test('index is rebuilt after a change', () => {
    const r = new DnsRegistry();
    r.upsertTask(task('web.1.a', '10.0.0.3'), 0);
    assert.equal(r.view('app')!.tasksOf('web').length, 1);
    r.upsertTask(task('web.2.b', '10.0.0.4'), 0);
    assert.equal(r.view('app')!.tasksOf('web').length, 2);
  });

  const bad: [string, () => void][] = [
    ['bad network', () => new DnsRegistry().upsertService({ name: 'web', network: 'a b', mode: 'vip' }, 0)],
    ['bad service', () => new DnsRegistry().upsertService({ name: '-web', network: 'app', mode: 'vip' }, 0)],
    ['bad mode', () => new DnsRegistry().upsertService({ name: 'web', network: 'app', mode: 'x' as 'vip' }, 0)],
    ['bad vip', () => new DnsRegistry().upsertService({ name: 'web', network: 'app', mode: 'vip', vip: '10.0.0.256' }, 0)],
    ['bad alias', () => new DnsRegistry().upsertService({ name: 'web', network: 'app', mode: 'vip', aliases: ['a..b'] }, 0)],
    ['bad task ip', () => new DnsRegistry().upsertTask(task('web.1.a', '::1'), 0)],
    ['empty owner', () => new DnsRegistry().upsertTask(task('web.1.a', '10.0.0.1', { owner: '' }), 0)],
  ];
  for (const [name, fn] of bad) {
    test(`rejects ${name} with MESHD_BAD_ARGUMENT`, () => {
      assert.throws(fn, (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
    });
  }

  test('isValidDnsName table', () => {
    const cases: [string, boolean][] = [['web', true], ['web.1.abc', true], ['_srv', true], ['a-b', true], ['', false], ['a.', false], ['-a', false], ['a-', false], ['x'.repeat(63), true], ['x'.repeat(64), false], ['A', false]];
    for (const [n, ok] of cases) assert.equal(isValidDnsName(n), ok, n);
  });
});
