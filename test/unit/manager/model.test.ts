import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { applyNodeUpdate, nodeUpdateSchema, parseBody, type ManagedNode } from '../../../src/manager/model.js';
import { ManagerApi, checkPathEncoding } from '../../../src/manager/server.js';
import { normalizeRemote } from '../../../src/manager/manager.js';
import { parseManagerAddr } from '../../../src/manager/client.js';

const node: ManagedNode = {
  id: 'n1', hostname: 'a', role: 'worker', availability: 'active', state: 'ready', labels: { zone: 'x', disk: 'hdd' },
  resources: { cpuMilli: 0, memoryBytes: 0 }, addr: '10.0.0.1', certSerial: '01', certNotAfter: 0, createdAt: 0, updatedAt: 0,
};

describe('route access table', () => {
  const table: [Parameters<typeof ManagerApi.allows>[0], 'worker' | 'manager' | undefined, boolean][] = [
    ['public', undefined, true], ['public', 'worker', true], ['public', 'manager', true],
    ['node', undefined, false], ['node', 'worker', true], ['node', 'manager', true],
    ['manager', undefined, false], ['manager', 'worker', false], ['manager', 'manager', true],
  ];
  for (const [access, role, ok] of table) {
    test(`${access} / ${role ?? 'no cert'} → ${ok}`, () => assert.equal(ManagerApi.allows(access, role), ok));
  }
});

describe('node updates', () => {
  test('labels replace, then add, then remove; availability kept unless given', () => {
    assert.deepEqual(applyNodeUpdate(node, { labelAdd: { disk: 'ssd', rack: '1' }, labelRm: ['zone'] }, 5).labels, { disk: 'ssd', rack: '1' });
    assert.deepEqual(applyNodeUpdate(node, { labels: { only: 'this' } }, 5).labels, { only: 'this' });
    const u = applyNodeUpdate(node, { availability: 'pause' }, 7);
    assert.deepEqual([u.availability, u.updatedAt, u.labels], ['pause', 7, node.labels]);
    assert.equal(node.availability, 'active', 'input not mutated');
  });

  const bad: [string, unknown][] = [
    ['undefined body', undefined], ['null', null], ['array', []], ['unknown key', { foo: 1 }],
    ['proto key', JSON.parse('{"labels": {"__proto__": "x"}}')], ['constructor key', { labelAdd: { constructor: 'x' } }],
    ['bad label key', { labelAdd: { '-x': 'y' } }], ['long label value', { labelAdd: { k: 'v'.repeat(1025) } }],
    ['negative version', { version: -1 }], ['huge version', { version: 2 ** 53 }], ['fractional version', { version: 0.5 }],
    ['string version', { version: '3' }], ['bad availability', { availability: 'off' }],
  ];
  for (const [name, raw] of bad) {
    test(`rejects ${name} with MESHD_BAD_ARGUMENT`, () => {
      assert.throws(() => parseBody(nodeUpdateSchema, 'node update', raw), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
    });
  }
});

describe('small helpers', () => {
  test('normalizeRemote', () => {
    assert.equal(normalizeRemote('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeRemote('::1'), '::1');
    assert.equal(normalizeRemote(undefined), undefined);
  });
  test('parseManagerAddr', () => {
    assert.deepEqual(parseManagerAddr('10.0.0.1:2377'), { host: '10.0.0.1', port: 2377 });
    assert.deepEqual(parseManagerAddr('10.0.0.1'), { host: '10.0.0.1', port: 2377 });
    assert.deepEqual(parseManagerAddr('[fd00::1]:99'), { host: 'fd00::1', port: 99 });
    for (const a of ['', 'a:0', 'a:70000', 'a b:1', '[::1', 'host:port']) assert.throws(() => parseManagerAddr(a), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT', a);
  });
  test('checkPathEncoding', () => {
    checkPathEncoding('/v1/nodes/a%20b');
    assert.throws(() => checkPathEncoding('/v1/nodes/%E0%A4%A'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
  });
});
