/** `x-meshd-runtime` under a Compose service: netns | docker, anything else refused with the key path. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { parseCompose, translateStack } from '../../../src/core/compose/index.js';

const file = (extra: string) => `services:\n  web:\n    image: busybox\n${extra}`;
const badArg = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message));

test('absent: automatic (no runtime in the spec)', () => {
  const p = translateStack('s', parseCompose(file('')));
  assert.equal(p.services[0]!.runtime, undefined);
  assert.deepEqual(p.warnings, []);
});

test('netns and docker reach the spec', () => {
  for (const r of ['netns', 'docker'] as const) {
    const p = translateStack('s', parseCompose(file(`    x-meshd-runtime: ${r}\n    command: [sleep, "60"]\n`)));
    assert.equal(p.services[0]!.runtime, r);
  }
});

test('an unknown value or a misspelt meshd key is refused with the key path', () => {
  badArg(() => parseCompose(file('    x-meshd-runtime: lxc\n')), /^services\.web\.x-meshd-runtime: expected one of netns, docker, got "lxc"$/);
  badArg(() => parseCompose(file('    x-meshd-runtime: true\n')), /^services\.web\.x-meshd-runtime: expected one of netns, docker, got true$/);
  badArg(() => parseCompose(file('    x-meshd-runtim: netns\n')), /^services\.web\.x-meshd-runtim: unknown meshd key \(known: x-meshd-runtime, x-meshd-allow, x-meshd-lb-algorithm, x-meshd-lb-locality\)$/);
  // Other extension keys stay free (Compose spec).
  assert.equal(parseCompose(file('    x-team: shop\n')).services[0]!.runtime, undefined);
});

test('a changed runtime is a changed spec (stack deploy updates the service)', () => {
  const a = translateStack('s', parseCompose(file(''))).services[0]!;
  const b = translateStack('s', parseCompose(file('    x-meshd-runtime: netns\n'))).services[0]!;
  assert.notDeepEqual(a, b);
});

test('x-meshd-lb-algorithm / x-meshd-lb-locality → the spec\'s lb; a bad value names the key', () => {
  const s = parseCompose(file('    x-meshd-lb-algorithm: source-hash\n    x-meshd-lb-locality: node\n')).services[0]!;
  assert.deepEqual(s.lb, { algorithm: 'source-hash', locality: 'node' });
  assert.deepEqual(translateStack('s', parseCompose(file('    x-meshd-lb-algorithm: round-robin\n'))).services[0]!.lb, { algorithm: 'round-robin' });
  badArg(() => parseCompose(file('    x-meshd-lb-algorithm: fastest\n')), /x-meshd-lb-algorithm/);
});
