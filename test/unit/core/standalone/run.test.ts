/** Standalone containers (`netctl run`), the pure half: attachable checks, the one-shot assignment, docker's status words. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkAttachable, containerStatus, defaultRunName, runRequestSchema, standaloneAssignment, type AttachedNetwork } from '../../../../src/core/standalone/run.js';
import { toStart } from '../../../../src/core/worker/converge.js';
import { thrownCode } from '../../../helpers/errors.js';

const net = (name: string, over: Partial<AttachedNetwork> = {}): AttachedNetwork => ({
  id: `id${name}`, name, vni: 4100, subnet: '10.77.0.0/24', gateway: '10.77.0.1', attachable: true, ingress: false, ...over,
});
const nets = new Map([['app', net('app')], ['plain', net('plain', { attachable: false })], ['ingress', net('ingress', { ingress: true, attachable: false })]]);

describe('checkAttachable', () => {
  test('an attachable network passes', () => {
    assert.deepEqual(checkAttachable(['app'], (n) => nets.get(n)).map((n) => n.id), ['idapp']);
  });
  test('refusals, each with its code and docker\'s wording', () => {
    assert.throws(() => checkAttachable(['plain'], (n) => nets.get(n)), /Could not attach to network plain: network plain not manually attachable/);
    assert.equal(thrownCode(() => checkAttachable(['plain'], (n) => nets.get(n))), 'MESHD_NOT_ATTACHABLE');
    assert.equal(thrownCode(() => checkAttachable(['ingress'], (n) => nets.get(n))), 'MESHD_NOT_ATTACHABLE');
    assert.equal(thrownCode(() => checkAttachable(['nope'], (n) => nets.get(n))), 'MESHD_NOT_FOUND');
    assert.equal(thrownCode(() => checkAttachable(['app', 'app'], (n) => nets.get(n))), 'MESHD_BAD_ARGUMENT');
  });
});

describe('standaloneAssignment', () => {
  const grant = { id: 'abcdef0123456789abcdef01', name: 'probe', networks: [{ network: { id: 'idapp', name: 'app', vni: 4100, subnet: '10.77.0.0/24', gateway: '10.77.0.1' }, ip: '10.77.0.9' }] };
  test('a one-shot dnsrr task named like the container, with no VIP and no ports', () => {
    const a = standaloneAssignment(grant, { image: 'meshd/busybox:local', argv: ['true'], env: { A: '1' }, runtime: 'docker' });
    assert.equal(a.task.standalone, true);
    assert.equal(a.task.serviceName, 'probe');
    assert.equal(a.task.name, 'probe');
    assert.equal(a.endpointMode, 'dnsrr');
    assert.deepEqual(a.ports, []);
    assert.deepEqual(a.attachments.map((x) => [x.network.name, x.ip, x.prefix, x.vip, x.mac]), [['app', '10.77.0.9', 24, null, '02:42:0a:4d:00:09']]);
  });
  test('no network: refused', () => {
    assert.equal(thrownCode(() => standaloneAssignment({ ...grant, networks: [] }, { image: 'x', argv: [], env: {}, runtime: 'docker' })), 'MESHD_BAD_ARGUMENT');
  });
});

describe('run request, names and status', () => {
  test('the body is strict and typed', () => {
    assert.ok(runRequestSchema.safeParse({ image: 'x', networks: ['app'] }).success);
    assert.ok(!runRequestSchema.safeParse({ image: 'x', networks: [] }).success, 'at least one network');
    assert.ok(!runRequestSchema.safeParse({ image: 'x', networks: ['app'], name: 'Bad_Name' }).success, 'a DNS label');
    assert.ok(!runRequestSchema.safeParse({ image: 'x', networks: ['app'], privileged: true }).success, 'no unknown key dropped silently');
    assert.ok(!runRequestSchema.safeParse({ image: 'x', networks: ['app'], env: { 'A B': '1' } }).success);
  });
  test('default name and docker\'s status words', () => {
    assert.equal(defaultRunName('ABCDEF0123'), 'run-abcdef01');
    assert.equal(containerStatus('running', null), 'running');
    assert.equal(containerStatus('starting', null), 'created');
    assert.equal(containerStatus('failed', 3), 'exited (3)');
    assert.equal(containerStatus('failed', 0), 'exited (0)');
    assert.equal(containerStatus('failed', null), 'exited');
  });
  test('the worker never restarts a one-shot task that ended, even without a manager', () => {
    const held = new Map([['c1', { id: 'c1', state: 'failed' as const, networks: ['app'] }], ['t1', { id: 't1', state: 'failed' as const, networks: ['app'] }]]);
    const desired = [{ id: 'c1', desiredState: 'running' as const }, { id: 't1', desiredState: 'running' as const }];
    assert.deepEqual(toStart(desired, held, false, new Set(), new Set(['c1'])), ['t1']);
    assert.deepEqual(toStart(desired, held, true, new Set(), new Set(['c1'])), []);
  });
});
