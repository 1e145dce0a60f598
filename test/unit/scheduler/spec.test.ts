import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isMeshError } from '../../../src/core/errors.js';
import { parseNode, parseServiceSpec, parseTask } from '../../../src/core/spec/validate.js';
import { taskSpecEqual, taskSpecOf } from '../../../src/core/spec/types.js';

const ok = { name: 'web', image: 'whoami:1' };

function rejects(raw: unknown, field: RegExp): void {
  assert.throws(() => parseServiceSpec(raw), (e: unknown) => {
    assert.ok(isMeshError(e), String(e));
    assert.equal(e.code, 'MESHD_BAD_ARGUMENT');
    assert.match(e.message, field);
    return true;
  });
}

describe('service spec validation', () => {
  test('minimal spec gets Docker-like defaults', () => {
    const s = parseServiceSpec(ok);
    assert.deepEqual(s.mode, { replicated: { replicas: 1 } });
    assert.equal(s.endpointMode, 'vip');
    assert.deepEqual(s.restartPolicy, { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    assert.deepEqual(s.updateConfig, { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0, order: 'stop-first' });
  });

  test('full spec round-trips', () => {
    const s = parseServiceSpec({
      ...ok, command: ['serve', '--port', '80'], env: { A: '1' }, mode: { global: {} }, endpointMode: 'dnsrr',
      ports: [{ published: 8080, target: 80, mode: 'host', policy: 'local' }], networks: ['app'],
      constraints: ['node.labels.zone==a', 'node.role!=manager'], preferences: [{ spread: 'node.labels.zone' }],
      resources: { cpuMilli: 250, memoryBytes: 64 * 2 ** 20 },
      restartPolicy: { condition: 'on-failure', delayMs: 1000, maxAttempts: 3, windowMs: 60000 },
      updateConfig: { parallelism: 2, delayMs: 1000, failureAction: 'rollback', monitorMs: 3000, maxFailureRatio: 0.25, order: 'start-first' },
      rollbackConfig: { parallelism: 0 },
    });
    assert.equal(s.ports[0]!.proto, 'tcp');
    assert.equal(s.rollbackConfig.parallelism, 0);
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['replicas NaN', { ...ok, mode: { replicated: { replicas: NaN } } }, /mode\.replicated\.replicas/],
    ['replicas -1', { ...ok, mode: { replicated: { replicas: -1 } } }, /mode\.replicated\.replicas/],
    ['replicas 2^53', { ...ok, mode: { replicated: { replicas: 2 ** 53 } } }, /mode\.replicated\.replicas/],
    ['replicas 1.5', { ...ok, mode: { replicated: { replicas: 1.5 } } }, /mode\.replicated\.replicas/],
    ['replicas "3"', { ...ok, mode: { replicated: { replicas: '3' } } }, /mode\.replicated\.replicas/],
    ['replicas Infinity', { ...ok, mode: { replicated: { replicas: Infinity } } }, /mode\.replicated\.replicas/],
    ['delay > 2^31', { ...ok, restartPolicy: { delayMs: 2 ** 31 } }, /restartPolicy\.delayMs/],
    ['negative parallelism', { ...ok, updateConfig: { parallelism: -1 } }, /updateConfig\.parallelism/],
    ['ratio > 1', { ...ok, updateConfig: { maxFailureRatio: 2 } }, /updateConfig\.maxFailureRatio/],
    ['ratio NaN', { ...ok, updateConfig: { maxFailureRatio: NaN } }, /updateConfig\.maxFailureRatio/],
    ['negative cpu', { ...ok, resources: { cpuMilli: -1, memoryBytes: 0 } }, /resources\.cpuMilli/],
    ['name uppercase', { ...ok, name: 'Web' }, /service spec name/],
    ['name 64 chars', { ...ok, name: 'a'.repeat(64) }, /service spec name/],
    ['name leading dash', { ...ok, name: '-web' }, /service spec name/],
    ['name with dot', { ...ok, name: 'web.app' }, /service spec name/],
    ['missing image', { name: 'web' }, /image/],
    ['unknown key', { ...ok, replicas: 3 }, /\(root\)|replicas/],
    ['port 70000', { ...ok, ports: [{ published: 70000, target: 80 }] }, /ports\.0\.published/],
    ['target 0', { ...ok, ports: [{ published: 80, target: 0 }] }, /ports\.0\.target/],
    ['port twice', { ...ok, ports: [{ published: 80, target: 80 }, { published: 80, target: 81 }] }, /ports\.1\.published/],
    ['bad mode', { ...ok, ports: [{ published: 80, target: 80, mode: 'bridge' }] }, /ports\.0\.mode/],
    ['bad constraint', { ...ok, constraints: ['node.labels.zone=a'] }, /constraints\.0/],
    ['bad preference', { ...ok, preferences: [{ spread: 'zone' }] }, /preferences\.0\.spread/],
    ['bad order', { ...ok, updateConfig: { order: 'random' } }, /updateConfig\.order/],
    ['bad failure action', { ...ok, updateConfig: { failureAction: 'explode' } }, /updateConfig\.failureAction/],
    ['bad lb algorithm', { ...ok, lb: { algorithm: 'least-conn' } }, /lb\.algorithm/],
    ['bad lb locality', { ...ok, lb: { locality: 'rack' } }, /lb\.locality/],
    ['unknown lb key', { ...ok, lb: { weight: 3 } }, /lb/],
    ['both modes', { ...ok, mode: { replicated: { replicas: 1 }, global: {} } }, /mode/],
    ['replicas > 10000', { ...ok, mode: { replicated: { replicas: 10001 } } }, /mode\.replicated\.replicas/],
  ];
  for (const [what, raw, field] of bad) test(`rejects ${what}`, () => rejects(raw, field));

  test('rejects __proto__ anywhere (as JSON.parse produces it), naming the field', () => {
    rejects(JSON.parse('{"name":"web","image":"x","__proto__":{"polluted":1}}'), /^__proto__: forbidden key/);
    rejects(JSON.parse('{"name":"web","image":"x","env":{"__proto__":"1"}}'), /^env\.__proto__: forbidden key/);
    rejects(JSON.parse('{"name":"web","image":"x","ports":[{"target":80,"constructor":{"prototype":{}}}]}'), /ports\[0\]\.constructor/);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('dnsrr may publish through the mesh (swarmkit#1693); lb choices are kept', () => {
    const s = parseServiceSpec({ ...ok, endpointMode: 'dnsrr', ports: [{ published: 80, target: 80 }], lb: { algorithm: 'source-hash', locality: 'zone' } });
    assert.equal(s.endpointMode, 'dnsrr');
    assert.equal(s.ports[0]!.published, 80);
    assert.deepEqual(s.lb, { algorithm: 'source-hash', locality: 'zone' });
  });

  test('not an object', () => {
    rejects(null, /\(root\)/);
    rejects('web', /\(root\)/);
  });
});

describe('node and task validation', () => {
  test('node defaults and bad input', () => {
    const n = parseNode({ id: 'n1', hostname: 'h1', role: 'worker' });
    assert.equal(n.availability, 'active');
    assert.equal(n.state, 'ready');
    assert.throws(() => parseNode({ id: 'n1', hostname: 'h1', role: 'boss' }), /node role/);
    assert.throws(() => parseNode({ id: 'n1', hostname: 'h1', role: 'worker', availability: 'gone' }), /node availability/);
    assert.throws(() => parseNode({ id: 'n1', hostname: 'h1', role: 'worker', resources: { cpuMilli: NaN, memoryBytes: 0 } }), /resources\.cpuMilli/);
    assert.throws(() => parseNode(JSON.parse('{"id":"n1","hostname":"h","role":"worker","labels":{"__proto__":"x"}}')), /labels\.__proto__/);
  });

  test('task round-trips; bad slot and state rejected', () => {
    const spec = taskSpecOf(parseServiceSpec(ok));
    const t = { id: 't1', serviceId: 's1', slot: 1, specVersion: 1, spec, desiredState: 'running', state: 'pending', timestamps: { created: 0, updated: 0 } };
    assert.deepEqual(parseTask(t).slot, 1);
    assert.throws(() => parseTask({ ...t, slot: 0 }), /task slot/);
    assert.throws(() => parseTask({ ...t, state: 'exploded' }), /task state/);
  });

  test('taskSpecEqual compares content, ignoring key order', () => {
    const a = taskSpecOf(parseServiceSpec({ ...ok, env: { A: '1', B: '2' } }));
    const b = taskSpecOf(parseServiceSpec({ ...ok, env: { B: '2', A: '1' }, mode: { replicated: { replicas: 5 } } }));
    const c = taskSpecOf(parseServiceSpec({ ...ok, env: { A: '1', B: '3' } }));
    assert.equal(taskSpecEqual(a, b), true);
    assert.equal(taskSpecEqual(a, c), false);
  });
});
