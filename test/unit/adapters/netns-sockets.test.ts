/** The bind helper's command line and environment (src/adapters/netns-sockets.ts); the real binds are in test/integration/dns-agent/netns-sockets.test.ts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binderArgv, binderEnv } from '../../../src/adapters/netns-sockets.js';
import { MeshError } from '../../../src/core/errors.js';

test('binderArgv: nsenter into /run/netns/NAME, then node (no flags: they cost Node its code cache) on the CommonJS child', () => {
  const [file, args] = binderArgv('mlab-L-n1-t-abc', '127.0.0.11', 53);
  assert.equal(file, 'nsenter');
  assert.equal(args[0], '--net=/run/netns/mlab-L-n1-t-abc');
  assert.deepEqual(args.slice(1, 3), ['--', process.execPath]);
  assert.match(args[3]!, /netns-bind-child\.cjs$/);
  assert.deepEqual(args.slice(4), ['127.0.0.11', '53']);
});

test('binderArgv: a name that could leave /run/netns is refused with MESHD_BAD_ARGUMENT', () => {
  for (const bad of ['', '.', '..', '../x', 'a/b', '/proc/1/ns/net', 'a b', 'x\n']) {
    assert.throws(() => binderArgv(bad, '127.0.0.11', 53), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT', JSON.stringify(bad));
  }
});

test("binderEnv: the parent's NODE_OPTIONS is dropped, the rest kept, the input untouched", () => {
  const env = { PATH: '/usr/bin', NODE_OPTIONS: '--import=/x.js', HOME: '/root' };
  assert.deepEqual(binderEnv(env), { PATH: '/usr/bin', HOME: '/root' });
  assert.equal(env.NODE_OPTIONS, '--import=/x.js');
});
