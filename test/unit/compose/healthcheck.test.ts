/** Compose `healthcheck` reaches the spec (never dropped); bad values name the key path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { parseCompose, translateStack } from '../../../src/core/compose/index.js';

const file = (hc: string) => `services:\n  web:\n    image: nginx\n    healthcheck:\n${hc}`;
const hcOf = (hc: string) => translateStack('s', parseCompose(file(hc))).services[0]!.healthcheck;
const badArg = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message), String(re));

test('every key is applied: test, interval, timeout, retries, start_period', () => {
  const p = translateStack('s', parseCompose(file('      test: ["CMD", "curl", "-f", "http://localhost/"]\n      interval: 1m30s\n      timeout: 500ms\n      retries: 4\n      start_period: 10s\n')));
  assert.deepEqual(p.services[0]!.healthcheck, { test: ['CMD', 'curl', '-f', 'http://localhost/'], intervalMs: 90_000, timeoutMs: 500, retries: 4, startPeriodMs: 10_000 });
  assert.deepEqual(p.warnings, [], 'healthcheck is no longer ignored');
});

test('a string test is a shell command; CMD-SHELL and NONE lists; disable', () => {
  assert.deepEqual(hcOf('      test: test ! -f /tmp/unhealthy\n'), { test: ['CMD-SHELL', 'test ! -f /tmp/unhealthy'] });
  assert.deepEqual(hcOf('      test: ["CMD-SHELL", "exit 0"]\n'), { test: ['CMD-SHELL', 'exit 0'] });
  assert.deepEqual(hcOf('      test: ["NONE"]\n'), { disable: true });
  assert.deepEqual(hcOf('      disable: true\n'), { disable: true });
});

test('start_interval is refused naming the key (meshd does not implement it; never accepted and dropped)', () => {
  assert.throws(() => translateStack('s', parseCompose(file('      test: "true"\n      start_interval: 1s\n'))),
    /^MeshError: services\.web\.healthcheck\.start_interval: not supported by meshd/);
});

test('bad values name the key path', () => {
  badArg(() => parseCompose(file('      interval: 10\n')), /^services\.web\.healthcheck\.interval: expected a duration/);
  badArg(() => parseCompose(file('      retries: three\n')), /^services\.web\.healthcheck\.retries: expected a whole number/);
  badArg(() => parseCompose(file('      test: ["curl", "x"]\n')), /^services\.web\.healthcheck\.test: a list must start with NONE, CMD or CMD-SHELL/);
  badArg(() => parseCompose(file('      test: ""\n')), /^services\.web\.healthcheck\.test: must not be empty/);
  badArg(() => parseCompose(file('      disable: "yes"\n')), /^services\.web\.healthcheck\.disable: expected true or false/);
  badArg(() => parseCompose(file('      intervl: 1s\n')), /^services\.web\.healthcheck\.intervl: unknown key \(did you mean interval\?\)/);
  // Ranges and combinations: the manager's schema, prefixed with the service path.
  badArg(() => translateStack('s', parseCompose(file('      retries: 0\n'))), /^services\.web: healthcheck\.retries: /);
  badArg(() => translateStack('s', parseCompose(file('      disable: true\n      interval: 1s\n'))), /^services\.web: healthcheck\.intervalMs: cannot be combined with disable/);
});
