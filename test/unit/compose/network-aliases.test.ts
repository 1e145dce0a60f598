/**
 * Network aliases end to end through the pure parts: the service spec takes docker's long
 * form `networks: [{ target, aliases }]` (and the normalized `networkAliases` map it stores),
 * the task spec carries them, and the dispatcher puts them into each attachment of the
 * assignment — from where the worker copies them into the endpoint records DNS reads.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { normalizeNetworks, parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecEqual, taskSpecOf } from '../../../src/core/spec/types.js';
import { assignmentsFor } from '../../../src/manager/control/dispatch.js';
import type { NetworkRecord, ServiceRecord, TaskRecord } from '../../../src/manager/control/model.js';

function badArg(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message));
}

describe('service spec: networks with aliases', () => {
  test('long and short forms mix; aliases merged per network, duplicates dropped, map sorted', () => {
    const s = parseServiceSpec({
      name: 's-web', image: 'whoami',
      networks: ['front', { target: 'back', aliases: ['web', 'api', 'web'] }, { target: 'front', aliases: ['web'] }],
      networkAliases: { back: ['v1', 'api'] },
    });
    assert.deepEqual(s.networks, ['front', 'back']);
    assert.deepEqual(s.networkAliases, { back: ['web', 'api', 'v1'], front: ['web'] });
  });

  test('no aliases: no map (specs stored before aliases existed compare equal)', () => {
    const s = parseServiceSpec({ name: 'web', image: 'whoami', networks: [{ target: 'app' }, 'app'] });
    assert.deepEqual(s.networks, ['app']);
    assert.equal('networkAliases' in s, false);
    assert.deepEqual(parseServiceSpec(s), s, 'a normalized spec parses to itself (service update posts it back)');
    const withA = parseServiceSpec({ name: 'web', image: 'whoami', networks: [{ target: 'app', aliases: ['w'] }] });
    assert.deepEqual(parseServiceSpec(withA), withA);
  });

  test('errors name the field', () => {
    badArg(() => parseServiceSpec({ name: 'web', image: 'x', networks: [{ target: 'app', aliases: ['Bad_1'] }] }), /^service spec networks\.0\.aliases\.0: must be a DNS label/);
    badArg(() => parseServiceSpec({ name: 'web', image: 'x', networks: ['UP'] }), /^service spec networks\.0\.target: must be a DNS label/);
    badArg(() => parseServiceSpec({ name: 'web', image: 'x', networks: [{ target: 'app', alias: ['a'] }] }), /^service spec networks\.0: Unrecognized key/);
    badArg(() => parseServiceSpec({ name: 'web', image: 'x', networks: ['app'], networkAliases: { other: ['a'] } }), /^service spec networkAliases\.other: network other is not in networks$/);
    const many = Array.from({ length: 20 }, (_, i) => `a${i}`);
    badArg(() => parseServiceSpec({ name: 'web', image: 'x', networks: [{ target: 'app', aliases: many }], networkAliases: { app: many.map((a) => `${a}x`) } }), /^service spec networkAliases\.app: at most 32 aliases per network$/);
  });

  test('normalizeNetworks table', () => {
    const rows: Array<[Parameters<typeof normalizeNetworks>, ReturnType<typeof normalizeNetworks>]> = [
      [[[], undefined], { networks: [] }],
      [[[{ target: 'a', aliases: [] }], {}], { networks: ['a'] }],
      [[[{ target: 'b', aliases: ['x'] }, { target: 'a', aliases: [] }], { a: ['y'] }], { networks: ['b', 'a'], networkAliases: { a: ['y'], b: ['x'] } }],
      [[[{ target: 'a', aliases: ['x', 'x'] }], { a: ['x'] }], { networks: ['a'], networkAliases: { a: ['x'] } }],
    ];
    for (const [args, want] of rows) assert.deepEqual(normalizeNetworks(...args), want);
  });

  test('task spec carries aliases; an alias change is a task change', () => {
    const a = parseServiceSpec({ name: 'web', image: 'whoami', networks: [{ target: 'app', aliases: ['w'] }] });
    const b = parseServiceSpec({ name: 'web', image: 'whoami', networks: [{ target: 'app', aliases: ['w2'] }] });
    const none = parseServiceSpec({ name: 'web', image: 'whoami', networks: ['app'] });
    assert.deepEqual(taskSpecOf(a).networkAliases, { app: ['w'] });
    assert.equal('networkAliases' in taskSpecOf(none), false);
    assert.ok(!taskSpecEqual(taskSpecOf(a), taskSpecOf(b)));
    assert.ok(!taskSpecEqual(taskSpecOf(a), taskSpecOf(none)));
  });
});

describe('dispatcher: aliases into the assignment', () => {
  const net = (id: string, name: string, third: number): NetworkRecord => ({
    id, name, driver: 'overlay', subnet: `10.10.${third}.0/24`, gateway: `10.10.${third}.1`, vni: 4096 + third, attachable: false, ingress: false, createdAt: 0,
  });
  const nets = new Map([['front', net('nf', 'front', 1)], ['back', net('nb', 'back', 2)]]);
  const spec = parseServiceSpec({ name: 's-web', image: 'whoami', networks: [{ target: 'front', aliases: ['web'] }, 'back'] });
  const svc: ServiceRecord = { id: 's1', version: 1, spec, vips: { nf: '10.10.1.2', nb: '10.10.2.2' }, createdAt: 0, updatedAt: 0 };
  const task: TaskRecord = {
    id: 'aaaaaaaaaaaa01', serviceId: 's1', slot: 1, nodeId: 'node1', specVersion: 1, spec: taskSpecOf(spec), desiredState: 'running',
    state: 'running', timestamps: { created: 0, updated: 0 }, addresses: { nf: '10.10.1.3', nb: '10.10.2.3' },
  };

  test('each attachment gets its network\'s aliases (none → [])', () => {
    const [a] = assignmentsFor('node1', [task], new Map([['s1', svc]]), nets);
    assert.ok(a);
    assert.deepEqual(a.attachments.map((x) => [x.network.name, x.aliases]), [['front', ['web']], ['back', []]]);
  });

  test('a task keeps the aliases of its own spec while the service moves on (rolling update)', () => {
    const next = parseServiceSpec({ ...spec, networks: [{ target: 'front', aliases: ['web2'] }, 'back'] });
    const [a] = assignmentsFor('node1', [task], new Map([['s1', { ...svc, version: 2, spec: next }]]), nets);
    assert.deepEqual(a!.attachments[0]!.aliases, ['web']);
  });

  test('tasks stored before aliases existed dispatch with none', () => {
    const { networkAliases: _drop, ...old } = task.spec;
    const [a] = assignmentsFor('node1', [{ ...task, spec: old }], new Map([['s1', svc]]), nets);
    assert.deepEqual(a!.attachments.map((x) => x.aliases), [[], []]);
  });
});
