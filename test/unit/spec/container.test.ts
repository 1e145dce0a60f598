/**
 * Issue 15's service-spec rows on the pure core: the container settings (mounts, labels,
 * hostname templates, workdir, user, entrypoint, DNS options, read-only, init) validated with
 * the field at fault, the netns runtime refusing what it cannot honour (MESHD_UNSUPPORTED naming
 * the runtime), the manager's published-port assignment for `-p 8000`, max replicas per node
 * in the scheduler with swarmkit's message, and the assignment carrying the rendered hostname.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { checkRuntimeSupport } from '../../../src/core/spec/runtime.js';
import { expandHostname } from '../../../src/core/spec/container.js';
import { assignPublishedPorts, DYNAMIC_PORT_MIN } from '../../../src/core/spec/ports.js';
import type { PortSpec } from '../../../src/core/spec/types.js';
import { schedule } from '../../../src/core/scheduler/index.js';
import { assignmentFor } from '../../../src/manager/control/dispatch.js';
import { countBy, idGen, node, pendingTasks, service } from '../orchestrator/fixtures.js';

const base = { name: 'web', image: 'meshd/busybox:local' };
const badField = (raw: Record<string, unknown>, field: RegExp) => assert.throws(() => parseServiceSpec({ ...base, ...raw }), (e: unknown) => {
  assert.ok(e instanceof MeshError, String(e));
  assert.equal(e.code, 'MESHD_BAD_ARGUMENT');
  assert.match(String(e.details?.field), field, e.message);
  return true;
});

describe('container settings: accepted forms', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['bind mount, read-only', { mounts: [{ type: 'bind', source: '/srv/data', target: '/data', readOnly: true }] }],
    ['named volume', { mounts: [{ type: 'volume', source: 'shop_data', target: '/var/lib/x' }] }],
    ['anonymous volume', { mounts: [{ type: 'volume', target: '/cache' }] }],
    ['tmpfs with size and mode', { mounts: [{ type: 'tmpfs', target: '/run/x', tmpfsSizeBytes: 1 << 20, tmpfsMode: 0o1777 }] }],
    ['labels', { labels: { 'com.example.team': 'web', tier: '' } }],
    ['hostname template', { hostname: '{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}' }],
    ['plain hostname', { hostname: 'box1' }],
    ['workdir, user uid:gid, entrypoint', { workdir: '/tmp', user: '1000:1000', entrypoint: ['sh', '-c'] }],
    ['user name', { user: 'nobody' }],
    ['cleared entrypoint', { entrypoint: [] }],
    ['dns options', { dnsOptions: ['ndots:2', 'timeout:1', 'rotate'] }],
    ['read-only and init', { readOnly: true, init: true }],
  ];
  for (const [name, container] of cases) {
    test(name, () => assert.deepEqual(parseServiceSpec({ ...base, container }).container, container));
  }
  test('nothing set: no container key (an empty one compares equal to none)', () => {
    assert.equal(parseServiceSpec({ ...base, container: { mounts: [], labels: {}, dnsOptions: [], readOnly: false } }).container, undefined);
  });
  test('service labels and max replicas per node', () => {
    const s = parseServiceSpec({ ...base, labels: { owner: 'shop' }, maxReplicasPerNode: 2 });
    assert.deepEqual([s.labels, s.maxReplicasPerNode], [{ owner: 'shop' }, 2]);
    assert.equal(parseServiceSpec({ ...base, maxReplicasPerNode: 0 }).maxReplicasPerNode, undefined);
  });
});

describe('container settings: refused with the field at fault', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['bind without source', { container: { mounts: [{ type: 'bind', target: '/d' }] } }, /^container\.mounts\.0\.source$/],
    ['relative bind source', { container: { mounts: [{ type: 'bind', source: 'data', target: '/d' }] } }, /^container\.mounts\.0\.source$/],
    ['relative target', { container: { mounts: [{ type: 'volume', target: 'd' }] } }, /^container\.mounts\.0\.target$/],
    ['mount over /', { container: { mounts: [{ type: 'volume', target: '/' }] } }, /^container\.mounts\.0\.target$/],
    ['tmpfs with source', { container: { mounts: [{ type: 'tmpfs', source: 'x', target: '/t' }] } }, /^container\.mounts\.0\.source$/],
    ['bad volume name', { container: { mounts: [{ type: 'volume', source: 'a b', target: '/t' }] } }, /^container\.mounts\.0\.source$/],
    ['tmpfs size on a bind', { container: { mounts: [{ type: 'bind', source: '/a', target: '/t', tmpfsSizeBytes: 1 }] } }, /^container\.mounts\.0\.type$/],
    ['unknown mount type', { container: { mounts: [{ type: 'npipe', target: '/t' }] } }, /^container\.mounts\.0\.type$/],
    ['duplicate mount point', { container: { mounts: [{ type: 'volume', target: '/t' }, { type: 'tmpfs', target: '/t' }] } }, /^container\.mounts\.1\.target$/],
    ['reserved meshd.* container label', { container: { labels: { 'meshd.task': 'x' } } }, /^container\.labels\.meshd\.task$/],
    ['unknown template', { container: { hostname: '{{.Service.Labels}}' } }, /^container\.hostname$/],
    ['hostname with a space', { container: { hostname: 'a b' } }, /^container\.hostname$/],
    ['relative workdir', { container: { workdir: 'tmp' } }, /^container\.workdir$/],
    ['user with a space', { container: { user: 'a b' } }, /^container\.user$/],
    ['dns option with a space', { container: { dnsOptions: ['ndots 2'] } }, /^container\.dnsOptions\.0$/],
    ['unknown container key', { container: { privileged: true } }, /^container$/],
    ['max per node on a global service', { mode: { global: {} }, maxReplicasPerNode: 1 }, /^maxReplicasPerNode$/],
    ['negative max per node', { maxReplicasPerNode: -1 }, /^maxReplicasPerNode$/],
  ];
  for (const [name, raw, field] of cases) test(name, () => badField(raw, field));
});

describe('the netns runtime refuses what it cannot honour, naming itself', () => {
  const netns = (container: Record<string, unknown>) => checkRuntimeSupport(parseServiceSpec({ name: 'w', image: 'whoami', container }));
  for (const [key, value, flag] of [
    ['mounts', [{ type: 'volume', source: 'v', target: '/t' }], '--mount type=volume'], ['labels', { a: 'b' }, '--container-label'], ['hostname', 'h', '--hostname'],
    ['user', 'nobody', '--user'], ['dnsOptions', ['ndots:1'], '--dns-option'], ['readOnly', true, '--read-only'], ['init', true, '--init'],
  ] as const) {
    test(key, () => assert.throws(() => netns({ [key]: value }), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_UNSUPPORTED'
      && e.message.includes(flag) && e.message.includes('netns runtime') && e.details?.runtime === 'netns'));
  }
  test('workdir, entrypoint, bind and tmpfs mounts are honoured there; docker takes everything', () => {
    netns({ workdir: '/tmp', entrypoint: ['env'], mounts: [{ type: 'bind', source: '/srv', target: '/data', readOnly: true }, { type: 'tmpfs', target: '/t' }] });
    checkRuntimeSupport(parseServiceSpec({ ...base, container: { mounts: [{ type: 'tmpfs', target: '/t' }], readOnly: true, init: true, user: 'nobody' } }));
  });
});

describe('hostname templates', () => {
  const ctx = { serviceName: 'web', serviceId: 'svc1', taskId: 'abc', taskName: 'web.2.abc', slot: 2, nodeHostname: 'n1', nodeId: 'id1' };
  const cases: Array<[string, string]> = [
    ['{{.Service.Name}}-{{.Task.Slot}}', 'web-2'],
    ['{{ .Node.Hostname }}-{{.Task.ID}}', 'n1-abc'],
    ['x{{.Service.ID}}.{{.Node.ID}}', 'xsvc1.id1'],
    ['plain', 'plain'],
  ];
  for (const [tpl, want] of cases) test(tpl, () => assert.equal(expandHostname(tpl, ctx), want));
  test('a global task (no slot) leaves no dangling dash', () => assert.equal(expandHostname('web-{{.Task.Slot}}', { ...ctx, slot: undefined }), 'web'));
  test('a node name with characters a hostname cannot hold is made safe', () => assert.equal(expandHostname('{{.Node.Hostname}}', { ...ctx, nodeHostname: 'build_1' }), 'build-1'));
  test('the assignment carries the rendered hostname, and netns gets the entrypoint in argv', () => {
    const net = { id: 'n1', name: 'app', vni: 4097, subnet: '10.0.1.0/24', gateway: '10.0.1.1', attachable: false, ingress: false, driver: 'overlay', createdAt: 0 };
    const mk = (raw: Record<string, unknown>) => {
      const spec = parseServiceSpec({ networks: ['app'], ...raw });
      const svc = { id: 's1', version: 1, spec, vips: {}, createdAt: 0, updatedAt: 0 };
      const [t] = pendingTasks(svc, 1, idGen('task'));
      return assignmentFor({ ...t!, nodeId: 'node1', state: 'assigned', addresses: { n1: '10.0.1.5' } } as never, svc as never, new Map([['app', net as never]]), 'host-a');
    };
    const a = mk({ ...base, command: ['sleep', '9'], container: { hostname: '{{.Service.Name}}-{{.Task.Slot}}-{{.Node.Hostname}}', entrypoint: ['tini', '--'] } });
    assert.equal(a?.task.container?.hostname, 'web-1-host-a');
    assert.deepEqual(a?.task.argv, ['sleep', '9'], 'docker: the entrypoint goes to the Engine, not into argv');
    const b = mk({ name: 'w', image: 'whoami', command: ['-x'], container: { entrypoint: ['env', 'A=1'], workdir: '/tmp' } });
    assert.deepEqual(b?.task.argv, ['env', 'A=1', '-x']);
    assert.equal(b?.task.container?.workdir, '/tmp');
  });
});

describe('published ports the manager assigns (-p 8000)', () => {
  const p = (target: number, published = 0, proto: 'tcp' | 'udp' = 'tcp', mode: 'ingress' | 'host' = 'ingress'): PortSpec => ({ target, published, proto, mode, policy: 'cluster' });
  test('lowest free port from 30000, skipping those in use; explicit and host ports untouched', () => {
    const out = assignPublishedPorts([p(80), p(8000), p(53, 0, 'udp'), p(81, 8081), p(82, 0, 'tcp', 'host')], new Set(['30000/tcp']));
    assert.deepEqual(out.map((x) => x.published), [30001, 30002, DYNAMIC_PORT_MIN, 8081, 0]);
  });
  test('an update keeps the assigned port for the same target and protocol', () => {
    const prev = [p(8000, 30005), p(9000, 30006)];
    assert.deepEqual(assignPublishedPorts([p(9000), p(8000), p(7000)], new Set(), prev).map((x) => x.published), [30006, 30005, 30000]);
  });
  test('a kept port another service took meanwhile is replaced', () => {
    assert.deepEqual(assignPublishedPorts([p(8000)], new Set(['30005/tcp']), [p(8000, 30005)]).map((x) => x.published), [30000]);
  });
  test('an exhausted range is refused, naming the way out', () => {
    const used = new Set(Array.from({ length: 2768 }, (_, i) => `${30000 + i}/tcp`));
    assert.throws(() => assignPublishedPorts([p(8000)], used), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_NOT_READY' && /-p PUBLISHED:8000/.test(e.message));
  });
});

describe('max replicas per node (scheduler)', () => {
  const nodes = ['n1', 'n2'].map((id) => node(id));
  test('spreads up to the limit, then the rest stay pending with swarmkit\'s message', () => {
    const r = schedule(pendingTasks(service('w', { maxReplicasPerNode: 1 }), 3), nodes, []);
    assert.deepEqual(countBy(r.assignments, (a) => a.nodeId), { n1: 1, n2: 1 });
    assert.deepEqual(r.unschedulable.map((u) => u.reason), ['no suitable node (max replicas per node limit exceed)']);
  });
  test('tasks already on a node count; other services do not', () => {
    const svc = service('w', { maxReplicasPerNode: 2 });
    const existing = pendingTasks(svc, 2).map((t) => ({ ...t, nodeId: 'n1', state: 'running' as const }));
    const other = pendingTasks(service('o'), 3).map((t) => ({ ...t, nodeId: 'n2', state: 'running' as const }));
    const r = schedule(pendingTasks(svc, 3, idGen('new-')), nodes, [...existing, ...other]);
    assert.deepEqual(countBy(r.assignments, (a) => a.nodeId), { n2: 2 });
    assert.equal(r.unschedulable.length, 1);
  });
  test('combined with another reason, both are named', () => {
    const r = schedule(pendingTasks(service('w', { maxReplicasPerNode: 1, constraints: ['node.hostname==n1'] }), 2), nodes, []);
    assert.equal(r.unschedulable[0]!.reason, 'no suitable node (1 node not satisfying constraints; max replicas per node limit exceed)');
  });
});
