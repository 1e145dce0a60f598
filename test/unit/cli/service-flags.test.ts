/** netctl service flag parsers (docker syntax). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { parseCount, parseDuration, parseNetwork, parsePublish, parseRuntime, parseScale, publishKey } from '../../../src/cli/service-flags.js';
import { editNetworks, RUNTIME_HELP } from '../../../src/cli/service-commands.js';

const bad = (f: () => unknown) => assert.throws(f, (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');

test('publish: short and long forms', () => {
  assert.deepEqual(parsePublish('8080:80'), { published: 8080, target: 80, proto: 'tcp', mode: 'ingress', policy: 'cluster' });
  assert.deepEqual(parsePublish('53:53/udp'), { published: 53, target: 53, proto: 'udp', mode: 'ingress', policy: 'cluster' });
  assert.deepEqual(parsePublish('80'), { published: 0, target: 80, proto: 'tcp', mode: 'ingress', policy: 'cluster' });
  assert.deepEqual(parsePublish('mode=ingress,published=8080,target=80,policy=local'), { published: 8080, target: 80, proto: 'tcp', mode: 'ingress', policy: 'local' });
  assert.deepEqual(parsePublish('mode=host,published=9000,target=90,protocol=udp'), { published: 9000, target: 90, proto: 'udp', mode: 'host', policy: 'cluster' });
  for (const s of ['', '8080:', 'a:b', '70000:80', '8080:80/sctp', 'published=80', 'mode=x,target=1', 'foo=1,target=2', 'target']) bad(() => parsePublish(s));
});

test('durations', () => {
  assert.equal(parseDuration('0', 'd'), 0);
  assert.equal(parseDuration('500ms', 'd'), 500);
  assert.equal(parseDuration('1s', 'd'), 1000);
  assert.equal(parseDuration('1.5m', 'd'), 90_000);
  assert.equal(parseDuration('2h', 'd'), 7_200_000);
  for (const s of ['1', '-1s', 's', '1d', '1 s']) bad(() => parseDuration(s, 'd'));
});

test('counts and scale', () => {
  assert.equal(parseCount('9', 'n'), 9);
  assert.equal(parseCount('-1', 'n'), -1); // range is the manager's to judge
  for (const s of ['NaN', '1.5', '', '0x10', '1e3']) bad(() => parseCount(s, 'n'));
  assert.deepEqual(parseScale('web=9'), ['web', 9]);
  for (const s of ['web', '=3', 'web=x']) bad(() => parseScale(s));
  assert.deepEqual(publishKey('8080'), { published: 8080, proto: 'tcp' });
  assert.deepEqual(publishKey('53/udp'), { published: 53, proto: 'udp' });
});

test('network: name or docker long form name=NET,alias=A[,alias=B]', () => {
  assert.deepEqual(parseNetwork('app'), { target: 'app', aliases: [] });
  assert.deepEqual(parseNetwork('name=app,alias=web,alias=api'), { target: 'app', aliases: ['web', 'api'] });
  assert.deepEqual(parseNetwork('alias=web,target=app'), { target: 'app', aliases: ['web'] });
  for (const s of ['', 'alias=web', 'name=app,alias', 'name=app,alias=', 'name=app,driver-opt=x']) bad(() => parseNetwork(s));
});

test('service update --network-rm / --network-add on a stored spec', () => {
  const spec = { networks: ['a', 'b'], networkAliases: { a: ['x'], b: ['y'] } };
  assert.deepEqual(editNetworks(spec, ['b'], []), { networks: ['a'], networkAliases: { a: ['x'] } });
  assert.deepEqual(editNetworks(spec, [], [{ target: 'c', aliases: ['z'] }]), { networks: ['a', 'b', { target: 'c', aliases: ['z'] }], networkAliases: { a: ['x'], b: ['y'] } });
  assert.deepEqual(editNetworks(spec, [], [{ target: 'a', aliases: ['w'] }]), { networks: ['b', { target: 'a', aliases: ['w'] }], networkAliases: { b: ['y'] } }, 're-adding replaces the aliases');
});

test('runtime: netns | docker | auto (auto = chosen from the image)', () => {
  assert.equal(parseRuntime('netns'), 'netns');
  assert.equal(parseRuntime('docker'), 'docker');
  assert.equal(parseRuntime(' Docker '), 'docker');
  assert.equal(parseRuntime('auto'), undefined);
  for (const s of ['', 'lxc', 'process', 'net ns']) bad(() => parseRuntime(s));
  assert.throws(() => parseRuntime('lxc'), /--runtime must be netns, docker or auto, got "lxc"/);
  // The help says what netns means for IMAGE.
  assert.match(RUNTIME_HELP, /With netns the IMAGE is only a label: the command runs from the host's filesystem in its own network namespace/);
});

test('health flags: docker spelling and durations; 0 removes an override; --no-healthcheck disables and conflicts', async () => {
  const { healthcheckFrom } = await import('../../../src/cli/service-flags.js');
  assert.equal(healthcheckFrom({}), undefined, 'no flag, no check in the spec (the image\'s applies)');
  assert.deepEqual(healthcheckFrom({ healthCmd: 'test ! -f /tmp/unhealthy', healthInterval: '500ms', healthTimeout: '2s', healthRetries: '2', healthStartPeriod: '1m' }),
    { test: ['CMD-SHELL', 'test ! -f /tmp/unhealthy'], intervalMs: 500, timeoutMs: 2000, retries: 2, startPeriodMs: 60_000 });
  assert.deepEqual(healthcheckFrom({ healthcheck: false }), { disable: true });
  assert.deepEqual(healthcheckFrom({ healthcheck: true }), undefined, 'commander\'s default for --no-healthcheck');
  // update: over the stored check.
  const base = { test: ['CMD-SHELL', 'true'], intervalMs: 1000, retries: 3 };
  assert.deepEqual(healthcheckFrom({ healthInterval: '5s' }, base), { test: ['CMD-SHELL', 'true'], intervalMs: 5000, retries: 3 });
  assert.deepEqual(healthcheckFrom({ healthRetries: '0' }, base), { test: ['CMD-SHELL', 'true'], intervalMs: 1000 });
  assert.deepEqual(healthcheckFrom({}, base), base);
  assert.deepEqual(healthcheckFrom({ healthCmd: 'exit 0' }, { disable: true }), { test: ['CMD-SHELL', 'exit 0'] }, 'a new command re-enables');
  bad(() => healthcheckFrom({ healthcheck: false, healthCmd: 'true' }));
  bad(() => healthcheckFrom({ healthInterval: '5' }));
  bad(() => healthcheckFrom({ healthRetries: 'many' }));
  bad(() => healthcheckFrom({ healthCmd: ' ' }));
  assert.throws(() => healthcheckFrom({ healthcheck: false, healthStartPeriod: '1s' }), /--no-healthcheck conflicts with --health-start-period/);
});

test('service ps shows the health of running tasks', async () => {
  const { stateWithHealth } = await import('../../../src/cli/service-commands.js');
  assert.equal(stateWithHealth({ state: 'running', health: 'healthy' }), 'running (healthy)');
  assert.equal(stateWithHealth({ state: 'running', health: 'starting' }), 'running (starting)');
  assert.equal(stateWithHealth({ state: 'running', health: null }), 'running');
  assert.equal(stateWithHealth({ state: 'failed', health: 'unhealthy' }), 'failed');
});
