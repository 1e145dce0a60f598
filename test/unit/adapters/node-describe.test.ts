/** The node description's host half: engine labels from `GET /info`, platform and resources in docker's words. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostPlatform, hostResources, parseEngineLabels } from '../../../src/adapters/node-describe.js';

test('engine labels: k=v and bare keys, junk and prototype keys skipped', () => {
  assert.deepEqual(parseEngineLabels(['storage=ssd', 'zone=a=b', 'gpu', '', 3, '=x', '__proto__=1']), { storage: 'ssd', zone: 'a=b', gpu: '' });
  assert.deepEqual(parseEngineLabels(null), {});
  assert.deepEqual(parseEngineLabels('storage=ssd'), {});
});

test('platform and resources of this host, as docker names them', () => {
  const p = hostPlatform();
  assert.equal(p.os, process.platform);
  assert.ok(!['x64', 'arm64'].includes(p.arch), `uname-style arch, got ${p.arch}`);
  const r = hostResources();
  assert.ok(r.cpuMilli >= 1000 && r.cpuMilli % 1000 === 0);
  assert.ok(r.memoryBytes > 0);
});
