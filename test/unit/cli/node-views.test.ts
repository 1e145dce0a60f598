/**
 * Golden text of the node views (docker's shapes) and the resource flags / Compose
 * `deploy.resources` parsing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesSize, cpus, infoText, nodePretty, nodePsRows } from '../../../src/cli/node-views.js';
import { resourcesFrom } from '../../../src/cli/resource-flags.js';
import { parseCompose } from '../../../src/core/compose/parse.js';
import { translateStack } from '../../../src/core/compose/translate.js';

const GiB = 2 ** 30;

describe('node views', () => {
  test('sizes and CPUs as docker prints them', () => {
    assert.equal(bytesSize(0), '0 B');
    assert.equal(bytesSize(1.025 * GiB), '1.025 GiB');
    assert.equal(bytesSize(64 * 2 ** 20, ''), '64MiB');
    assert.equal(bytesSize(1536), '1.5 KiB');
    assert.equal(cpus(500), '0.5');
    assert.equal(cpus(8000), '8');
  });

  test('info: classic Swarm\'s layout (seed 003)', () => {
    const text = infoText({
      strategy: 'spread', filters: ['availability', 'resources'], tasks: 1, nodes: [{
        id: 'abc', hostname: 'n1', addr: '10.0.0.1', role: 'manager', state: 'ready', availability: 'active', tasks: 1,
        reserved: { cpuMilli: 500, memoryBytes: 0 }, total: { cpuMilli: 8000, memoryBytes: 1.025 * GiB },
        platform: { os: 'linux', arch: 'x86_64' }, engine: { version: '20.10', labels: { b: '2', a: '1' } },
      }],
    });
    assert.equal(text, [
      'Tasks: 1', 'Strategy: spread', 'Filters: availability, resources', 'Nodes: 1', ' n1: 10.0.0.1', '  └ ID: abc', '  └ Status: Ready',
      '  └ Availability: Active', '  └ Role: manager', '  └ Tasks: 1', '  └ Reserved CPUs: 0.5 / 8', '  └ Reserved Memory: 0 B / 1.025 GiB',
      '  └ Platform: linux/x86_64', '  └ Engine: 20.10 (labels: a=1, b=2)', '',
    ].join('\n'));
  });

  test('inspect --pretty', () => {
    const text = nodePretty({
      id: 'abc', hostname: 'n2', role: 'manager', availability: 'active', state: 'ready', addr: '10.0.0.2', labels: { zone: 'a' },
      resources: { cpuMilli: 2000, memoryBytes: 2 * GiB }, platform: { os: 'linux', arch: 'x86_64' }, runtimes: ['netns', 'docker'],
      engine: { version: '20.10', apiVersion: '1.41', labels: { ssd: '' } }, managerAddr: '10.0.0.2:2377', managerStatus: 'leader',
    });
    for (const line of ['ID:                     abc', 'Labels:', ' - zone = a', 'Hostname:               n2', ' State:                 Ready',
      'Manager Status:', ' Leader:                Yes', ' Operating System:      linux', ' Architecture:          x86_64',
      ' CPUs:                  2', ' Memory:                2GiB', 'Runtimes:               netns, docker', 'Engine Labels:', ' - ssd']) {
      assert.ok(text.split('\n').includes(line), `missing ${JSON.stringify(line)} in\n${text}`);
    }
    assert.ok(!nodePretty({ id: 'x', hostname: 'w', role: 'worker', availability: 'drain', state: 'down', addr: '', labels: {}, resources: { cpuMilli: 0, memoryBytes: 0 } }).includes('Manager Status'));
  });

  test('node ps rows: docker\'s columns, the pending reason in ERROR', () => {
    const now = Date.parse('2026-01-01T00:01:00Z');
    const rows = nodePsRows([
      { id: '0123456789abcdef', name: 'web.1.0123456789abcdef', image: 'whoami', node: 'n1', desiredState: 'running', state: 'running', updatedAt: '2026-01-01T00:00:55Z', error: null, message: 'started' },
      { id: 'fedcba9876543210', name: 'big.1', image: 'whoami', node: null, desiredState: 'running', state: 'pending', updatedAt: '2026-01-01T00:00:00Z', error: null, message: 'no suitable node (insufficient resources on 3 nodes)' },
    ], now);
    assert.deepEqual(rows, [
      ['0123456789ab', 'web.1', 'whoami', 'n1', 'Running', 'Running 5 seconds ago', ''],
      ['fedcba987654', 'big.1', 'whoami', '', 'Running', 'Pending 1 minute ago', 'no suitable node (insufficient resources on 3 nodes)'],
    ]);
  });
});

describe('resource flags and deploy.resources', () => {
  test('flags: reservations and limits; an update keeps what it does not name; zero limits drop', () => {
    assert.deepEqual(resourcesFrom({ reserveCpu: '0.5', reserveMemory: '64m', limitMemory: '128m' }), {
      resources: { cpuMilli: 500, memoryBytes: 64 * 2 ** 20 }, limits: { cpuMilli: 0, memoryBytes: 128 * 2 ** 20 },
    });
    const base = { resources: { cpuMilli: 500, memoryBytes: 0 }, limits: { cpuMilli: 1000, memoryBytes: 0 } };
    assert.deepEqual(resourcesFrom({ reserveMemory: '1g' }, base), { resources: { cpuMilli: 500, memoryBytes: GiB }, limits: base.limits });
    assert.deepEqual(resourcesFrom({ limitCpu: '0' }, base), { resources: base.resources });
    assert.throws(() => resourcesFrom({ reserveCpu: 'half' }), /--reserve-cpu/);
  });

  test('compose: reservations → resources, limits → limits; unknown keys refused by path', () => {
    const yaml = (res: string) => `services:\n  web:\n    image: meshd/nginx:1\n    deploy:\n      resources:\n${res}`;
    const plan = translateStack('s', parseCompose(yaml('        reservations: { cpus: "0.25", memory: 20M }\n        limits: { cpus: 0.5, memory: 50M }\n')));
    const spec = plan.services[0]!;
    assert.deepEqual(spec.resources, { cpuMilli: 250, memoryBytes: 20 * 2 ** 20 });
    assert.deepEqual(spec.limits, { cpuMilli: 500, memoryBytes: 50 * 2 ** 20 });
    assert.equal(parseCompose(yaml('        reservations: { cpus: "0.25" }\n')).warnings.length, 0);
    assert.throws(() => parseCompose(yaml('        limits: { pids: 10 }\n')), /services\.web\.deploy\.resources\.limits\.pids: unknown key/);
    assert.throws(() => parseCompose(yaml('        reservations: { devices: [] }\n')), /reservations\.devices: unknown key/);
    assert.throws(() => parseCompose(yaml('        limits: { memory: lots }\n')), /services\.web\.deploy\.resources\.limits\.memory: "lots": expected a size/);
  });
});
