/** The health check in service specs: input forms, normalization, bad values (field named), docker's Config.Healthcheck. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dockerHealthConfig, normalizeTest, probeOf } from '../../../src/core/health/spec.js';
import { parseServiceSpec, parseTask } from '../../../src/core/spec/validate.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';
import { MeshError } from '../../../src/core/errors.js';

const spec = (healthcheck: unknown) => parseServiceSpec({ name: 'web', image: 'nginx', healthcheck });
function rejects(healthcheck: unknown, field: string): void {
  assert.throws(() => spec(healthcheck), (e: unknown) => {
    assert.ok(e instanceof MeshError);
    assert.equal(e.code, 'MESHD_BAD_ARGUMENT');
    assert.equal(e.details?.field, field, e.message);
    return true;
  }, JSON.stringify(healthcheck));
}

describe('healthcheck spec', () => {
  test('test forms normalize to docker\'s prefixed list', () => {
    assert.deepEqual(normalizeTest('curl -f localhost'), ['CMD-SHELL', 'curl -f localhost']);
    assert.deepEqual(normalizeTest(['curl', '-f', 'localhost']), ['CMD', 'curl', '-f', 'localhost']);
    assert.deepEqual(normalizeTest(['CMD', 'true']), ['CMD', 'true']);
    assert.deepEqual(normalizeTest(['CMD-SHELL', 'exit 0']), ['CMD-SHELL', 'exit 0']);
    assert.deepEqual(normalizeTest(['NONE']), ['NONE']);
  });

  test('a valid check is kept, fields as given (absent ones inherit)', () => {
    assert.deepEqual(spec({ test: 'test ! -f /tmp/x', intervalMs: 500, retries: 2 }).healthcheck, { test: ['CMD-SHELL', 'test ! -f /tmp/x'], intervalMs: 500, retries: 2 });
    assert.deepEqual(spec({ intervalMs: 1000 }).healthcheck, { intervalMs: 1000 }, 'timings alone override the image\'s');
    assert.equal(parseServiceSpec({ name: 'web', image: 'nginx' }).healthcheck, undefined);
  });

  test('disable and test NONE both mean disable', () => {
    assert.deepEqual(spec({ disable: true }).healthcheck, { disable: true });
    assert.deepEqual(spec({ test: ['NONE'] }).healthcheck, { disable: true });
    assert.deepEqual(spec({ disable: false, test: 'true' }).healthcheck, { test: ['CMD-SHELL', 'true'] });
  });

  test('bad values name the field', () => {
    rejects({ intervalMs: 0 }, 'healthcheck.intervalMs');
    rejects({ intervalMs: -5 }, 'healthcheck.intervalMs');
    rejects({ intervalMs: 1.5 }, 'healthcheck.intervalMs');
    rejects({ timeoutMs: 'soon' }, 'healthcheck.timeoutMs');
    rejects({ retries: 0 }, 'healthcheck.retries');
    rejects({ retries: 1e6 }, 'healthcheck.retries');
    rejects({ startPeriodMs: -1 }, 'healthcheck.startPeriodMs');
    rejects({ startPeriodMs: 1e12 }, 'healthcheck.startPeriodMs');
    rejects({ test: '' }, 'healthcheck.test');
    rejects({ test: [] }, 'healthcheck.test');
    rejects({ test: ['CMD'] }, 'healthcheck.test');
    rejects({ test: ['CMD-SHELL', 'a', 'b'] }, 'healthcheck.test');
    rejects({ test: ['NONE', 'x'] }, 'healthcheck.test');
    rejects({ disable: true, intervalMs: 1000 }, 'healthcheck.intervalMs');
    rejects({ disable: true, test: 'true' }, 'healthcheck.test');
    rejects({ tests: 'true' }, 'healthcheck');
    rejects({ disable: 'yes' }, 'healthcheck.disable');
  });

  test('task specs carry it, and stored tasks with it parse again', () => {
    const s = spec({ test: ['CMD', 'true'], retries: 2 });
    const ts = taskSpecOf(s);
    assert.deepEqual(ts.healthcheck, { test: ['CMD', 'true'], retries: 2 });
    const task = parseTask({ id: 't', serviceId: 's', specVersion: 1, spec: ts, desiredState: 'running', state: 'running', health: 'healthy', timestamps: { created: 0, updated: 0 } });
    assert.equal(task.health, 'healthy');
    assert.throws(() => parseTask({ id: 't', serviceId: 's', specVersion: 1, spec: ts, desiredState: 'running', state: 'running', health: 'sick', timestamps: { created: 0, updated: 0 } }), /health/);
  });

  test('probeOf: the command the netns runtime runs, with docker\'s defaults', () => {
    assert.deepEqual(probeOf({ test: ['CMD-SHELL', 'exit 1'], intervalMs: 100 }), { argv: ['sh', '-c', 'exit 1'], intervalMs: 100, timeoutMs: 30_000, retries: 3, startPeriodMs: 0 });
    assert.deepEqual(probeOf({ test: ['CMD', 'true'] })?.argv, ['true']);
    assert.equal(probeOf({ intervalMs: 100 }), null, 'no test: nothing to run (no image to inherit from)');
    assert.equal(probeOf({ disable: true }), null);
    assert.equal(probeOf(undefined), null);
  });

  test('dockerHealthConfig: nanoseconds, unset fields left to the image, disable → NONE', () => {
    assert.deepEqual(dockerHealthConfig({ test: ['CMD-SHELL', 'x'], intervalMs: 500, timeoutMs: 2000, retries: 2, startPeriodMs: 1000 }),
      { Test: ['CMD-SHELL', 'x'], Interval: 500e6, Timeout: 2000e6, Retries: 2, StartPeriod: 1000e6 });
    assert.deepEqual(dockerHealthConfig({ intervalMs: 1 }), { Interval: 1e6 });
    assert.deepEqual(dockerHealthConfig({ disable: true }), { Test: ['NONE'] });
    assert.equal(dockerHealthConfig({}), undefined);
    assert.equal(dockerHealthConfig(undefined), undefined);
  });
});
