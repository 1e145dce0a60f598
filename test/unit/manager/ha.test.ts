/**
 * Pure pieces of manager HA: leader candidacy values, manager status, the failover choice
 * of the agent's ManagerPool, store config validation, and what a new leader does with an
 * update the previous leader left half done.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecOf, type ServiceSpec } from '../../../src/core/spec/types.js';
import { candidateValue, parseCandidate } from '../../../src/manager/leadership.js';
import { managerStatusOf } from '../../../src/manager/model.js';
import { NODE_LS_HEADERS, nodeRows } from '../../../src/cli/node-commands.js';
import { isFailover, nextManager, notLeaderHint, notLeaderTarget } from '../../../src/manager/pool.js';
import { checkStoreConfig, hostsManagerStore, loadStoreConfig, parseEndpoints, saveStoreConfig, shareableStore } from '../../../src/manager/store-config.js';
import { resumeUpdates, startStrandedTasks } from '../../../src/manager/control/failover.js';
import { ControlState } from '../../../src/manager/control/state.js';
import { orphanLostStops } from '../../../src/manager/control/engine.js';
import type { ServiceRecord, TaskRecord } from '../../../src/manager/control/model.js';
import type { RollingUpdate } from '../../../src/core/orchestrator/index.js';

test('leader candidacy: nodeId@addr round trip; a bare id has no address', () => {
  assert.equal(candidateValue('abc', '10.0.0.1:2377'), 'abc@10.0.0.1:2377');
  assert.deepEqual(parseCandidate('abc@10.0.0.1:2377'), { nodeId: 'abc', addr: '10.0.0.1:2377' });
  assert.deepEqual(parseCandidate('abc@[fd00::1]:2377'), { nodeId: 'abc', addr: '[fd00::1]:2377' });
  assert.deepEqual(parseCandidate('abc'), { nodeId: 'abc', addr: undefined });
  assert.equal(parseCandidate(undefined), undefined);
  assert.equal(parseCandidate(''), undefined);
});

test('manager status table (docker MANAGER STATUS)', () => {
  const cases: Array<[string, 'worker' | 'manager', 'ready' | 'down', string | undefined, string | null]> = [
    ['a', 'manager', 'ready', 'a', 'leader'],
    ['a', 'manager', 'ready', 'b', 'reachable'],
    ['a', 'manager', 'down', 'b', 'unreachable'],
    ['a', 'manager', 'ready', undefined, 'reachable'],
    ['a', 'worker', 'ready', 'a', null],
  ];
  for (const [id, role, state, leader, want] of cases) assert.equal(managerStatusOf({ id, role, state }, leader), want, `${id} ${role} ${state} leader=${String(leader)}`);
});

test('netctl node ls rows: MANAGER STATUS capitalized for managers, empty for workers; sorted; self marked', () => {
  const n = (id: string, hostname: string, role: string, state: string, managerStatus: 'leader' | 'reachable' | 'unreachable' | null) =>
    ({ id: id.repeat(24), hostname, role, state, availability: 'active', addr: `10.0.0.${hostname.slice(1)}`, labels: {}, managerStatus });
  const list = [n('c', 'n3', 'worker', 'ready', null), n('a', 'n1', 'manager', 'ready', 'leader'), n('b', 'n2', 'manager', 'down', 'unreachable'), n('d', 'n4', 'manager', 'ready', 'reachable')];
  assert.deepEqual(NODE_LS_HEADERS, ['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ROLE', 'ADDRESS']);
  assert.deepEqual(nodeRows(list, 'b'.repeat(24)), [
    ['aaaaaaaaaaaa', 'n1', 'Ready', 'Active', 'Leader', 'manager', '10.0.0.1'],
    ['bbbbbbbbbbbb *', 'n2', 'Down', 'Active', 'Unreachable', 'manager', '10.0.0.2'],
    ['cccccccccccc', 'n3', 'Ready', 'Active', '', 'worker', '10.0.0.3'],
    ['dddddddddddd', 'n4', 'Ready', 'Active', 'Reachable', 'manager', '10.0.0.4'],
  ]);
  assert.deepEqual(nodeRows([{ ...list[1]!, managerStatus: undefined }], null)[0]![4], '', 'an older manager without the field: empty');
});

describe('manager failover choice', () => {
  const notLeader = (leader: string | null) => new MeshError('MESHD_NOT_LEADER', 'not the leader', { reason: 'not-leader', leader, leaderId: leader ? 'x' : null });
  /** A leader that found out from a refused fenced write: it names no leader. */
  const deposedLeader = new MeshError('MESHD_NOT_LEADER', 'write refused: leadership ended', { reason: 'deposed', leader: null });
  /** What managers before MESHD_NOT_LEADER answered. */
  const legacy = (leader: string | null) => new MeshError('MESHD_NOT_READY', 'not the leader', { reason: 'not-leader', leader, leaderId: leader ? 'x' : null });
  const down = new MeshError('MESHD_MANAGER_UNREACHABLE', 'refused');
  const addrs = ['a:1', 'b:1', 'c:1'];
  test('classification', () => {
    assert.deepEqual(notLeaderTarget(notLeader('b:1')), { leader: 'b:1' });
    assert.deepEqual(notLeaderTarget(notLeader(null)), { leader: null });
    assert.equal(notLeaderTarget(new MeshError('MESHD_NOT_READY', 'other')), undefined);
    assert.deepEqual(notLeaderTarget(deposedLeader), { leader: null });
    assert.deepEqual(notLeaderTarget(legacy('b:1')), { leader: 'b:1' });
    const e = notLeader('b:1');
    assert.deepEqual([e.status, e.exitCode, e.kind], [503, 6, 'Unavailable'], 'MESHD_NOT_LEADER is Unavailable: 503, exit 6');
    assert.ok(isFailover(down));
    assert.ok(!isFailover(new MeshError('MESHD_FORBIDDEN', 'no')));
    assert.ok(!isFailover(new Error('x')));
  });
  const cases: Array<[string, string[], string, unknown, string | undefined]> = [
    ['unreachable → next untried', ['a:1'], 'a:1', down, 'b:1'],
    ['unreachable, all tried → give up', addrs, 'c:1', down, undefined],
    ['follower names the leader', ['a:1'], 'a:1', notLeader('c:1'), 'c:1'],
    ['follower names an unknown leader → go there', ['a:1'], 'a:1', notLeader('d:1'), 'd:1'],
    ['named leader already tried → next untried', ['a:1', 'c:1'], 'a:1', notLeader('c:1'), 'b:1'],
    ['no leader elected → next untried', ['a:1'], 'a:1', notLeader(null), 'b:1'],
    ['deposed leader → next untried', ['a:1'], 'a:1', deposedLeader, 'b:1'],
    ['older manager\'s not-leader answer is followed too', ['a:1'], 'a:1', legacy('c:1'), 'c:1'],
    ['a real error is not failed over', ['a:1'], 'a:1', new MeshError('MESHD_NOT_FOUND', 'no such service'), undefined],
  ];
  for (const [name, tried, failed, e, want] of cases) test(name, () => assert.equal(nextManager(addrs, new Set(tried), failed, e), want));
  test('netctl hint names the leader (hostname and address) when the refusal does', () => {
    const named = new MeshError('MESHD_NOT_LEADER', 'x', { reason: 'not-leader', leader: '10.0.0.2:2377', leaderId: 'id2', leaderName: 'n2' });
    assert.equal(notLeaderHint(named), 'the leader is n2 (10.0.0.2:2377), but this node could not get it to serve the request: retry shortly, or run netctl on n2');
    assert.match(notLeaderHint(notLeader('c:1'))!, /^the leader is c:1, /);
    assert.match(notLeaderHint(notLeader(null))!, /^no manager leads right now/);
    assert.match(notLeaderHint(deposedLeader)!, /lost its leadership while writing: nothing was changed/);
    assert.equal(notLeaderHint(down), undefined);
    assert.equal(notLeaderHint(new Error('x')), undefined);
  });
});

describe('store config', () => {
  test('validation', () => {
    assert.deepEqual(checkStoreConfig({ kind: 'etcd', endpoints: ['http://10.0.0.2:2379'] }), { kind: 'etcd', endpoints: ['http://10.0.0.2:2379'] });
    assert.deepEqual(checkStoreConfig({ kind: 'sqlite' }), { kind: 'sqlite' });
    const bad: unknown[] = [
      { kind: 'etcd', endpoints: [] }, { kind: 'etcd', endpoints: ['ftp://x:1'] }, { kind: 'etcd', endpoints: ['http://u:p@x:1'] },
      { kind: 'etcd', endpoints: ['http://x:1/path'] }, { kind: 'etcd', endpoints: ['http://x:1'], root: 'noslash' },
      { kind: 'etcd', endpoints: ['http://x:1'], extra: 1 }, { kind: 'mysql' }, null,
    ];
    for (const b of bad) assert.throws(() => checkStoreConfig(b), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_CONFIG', JSON.stringify(b));
  });
  test('endpoint lists', () => {
    assert.deepEqual(parseEndpoints('http://a:1, http://b:2/ ,,'), ['http://a:1', 'http://b:2']);
  });
  test('only etcd is shared with joining managers', () => {
    assert.equal(shareableStore({ kind: 'sqlite' }), undefined);
    assert.deepEqual(shareableStore({ kind: 'etcd', endpoints: ['http://a:1'] }), { kind: 'etcd', endpoints: ['http://a:1'] });
  });
  test('saved 0600, reloaded; no file means sqlite', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshd-storecfg-'));
    try {
      assert.equal(hostsManagerStore(dir), false);
      assert.deepEqual(loadStoreConfig(dir), { kind: 'sqlite' });
      saveStoreConfig(dir, { kind: 'etcd', endpoints: ['http://a:1'], root: '/x/' });
      assert.equal(statSync(join(dir, 'store.json')).mode & 0o777, 0o600);
      assert.deepEqual(loadStoreConfig(dir), { kind: 'etcd', endpoints: ['http://a:1'], root: '/x/' });
      assert.equal(hostsManagerStore(dir), true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a new leader takes over a half-done update', () => {
  const v1 = parseServiceSpec({ name: 'web', image: 'whoami', mode: { replicated: { replicas: 3 } }, updateConfig: { parallelism: 1, delayMs: 1000 } });
  const v2: ServiceSpec = { ...v1, env: { V: '2' } };
  const task = (id: string, slot: number, version: number, spec: ServiceSpec, over: Partial<TaskRecord> = {}): TaskRecord => ({
    id, serviceId: 'svc', slot, nodeId: 'n1', specVersion: version, spec: taskSpecOf(spec), desiredState: 'running', state: 'running',
    timestamps: { created: slot * 10 + version, updated: 0 }, addresses: {}, ...over,
  });
  function state(tasks: TaskRecord[], update: ServiceRecord['update']): ControlState {
    const st = new ControlState();
    st.services.set('svc', { id: 'svc', version: 2, spec: v2, previous: { version: 1, spec: v1 }, vips: {}, createdAt: 0, updatedAt: 0, update });
    for (const t of tasks) st.tasks.set(t.id, t);
    return st;
  }

  test('resumes a working update and queues only the slots still on the old spec', () => {
    const st = state([task('a2', 1, 2, v2), task('b1', 2, 1, v1), task('c1', 3, 1, v1)], { state: 'updating', message: '', at: 0 });
    const updaters = new Map<string, RollingUpdate>();
    let n = 0;
    assert.deepEqual(resumeUpdates(st, updaters, 1000, () => `new${n++}`), ['svc']);
    const u = updaters.get('svc')!;
    assert.equal(u.state, 'updating');
    const acts = u.drain();
    assert.match(JSON.stringify(acts.find((a) => a.type === 'updateState')), /2 slot\(s\)/);
    // parallelism 1: one slot at a time, the first still-old one (slot 2) drains first.
    assert.deepEqual(acts.filter((a) => a.type === 'drainTask'), [{ type: 'drainTask', taskId: 'b1' }]);
    assert.deepEqual(resumeUpdates(st, updaters, 1000, () => 'x'), [], 'an existing machine is kept');
  });

  test('completed, paused and absent updates are not resumed', () => {
    for (const update of [undefined, { state: 'completed' as const, message: '', at: 0 }, { state: 'paused' as const, message: '', at: 0 }]) {
      const updaters = new Map<string, RollingUpdate>();
      assert.deepEqual(resumeUpdates(state([task('b1', 2, 1, v1)], update), updaters, 0, () => 'x'), []);
      assert.equal(updaters.size, 0);
    }
  });

  test('a stop ordered while the node was in its down grace is orphaned once the node is down (the update gets taskStopped)', () => {
    const st = state([
      task('s1', 1, 1, v1, { desiredState: 'shutdown', state: 'running' }), // ordered to stop, node went down before it reported
      task('s2', 2, 1, v1, { desiredState: 'shutdown', state: 'running', nodeId: 'n2' }), // node up: wait for its report
      task('s3', 3, 1, v1, { desiredState: 'shutdown', state: 'shutdown' }), // already ended
      task('r1', 1, 2, v2, { desiredState: 'running', state: 'running' }), // not told to stop: the orchestrator's business
    ], { state: 'updating', message: '', at: 0 });
    const node = (id: string, state: 'ready' | 'down') => ({ id, hostname: id, role: 'worker' as const, availability: 'active' as const, state, labels: {}, resources: { nanoCpus: 0, memoryBytes: 0 }, createdAt: 0, updatedAt: 0 });
    st.nodes.set('n1', node('n1', 'down') as never);
    st.nodes.set('n2', node('n2', 'ready') as never);
    assert.deepEqual(orphanLostStops(st, 5000), [{ serviceId: 'svc', ev: { type: 'taskStopped', taskId: 's1' } }]);
    assert.equal(st.tasks.get('s1')!.state, 'orphaned');
    assert.equal(st.tasks.get('s2')!.state, 'running');
    assert.equal(st.tasks.get('r1')!.state, 'running');
    assert.deepEqual(orphanLostStops(st, 6000), [], 'idempotent');
  });

  test('a stop-first replacement left `ready` starts once its slot has nothing that may run', () => {
    const st = state([
      task('old1', 1, 1, v1, { desiredState: 'shutdown', state: 'shutdown' }), task('new1', 1, 2, v2, { desiredState: 'ready', state: 'pending', nodeId: undefined }),
      task('old2', 2, 1, v1, { desiredState: 'shutdown', state: 'running' }), task('new2', 2, 2, v2, { desiredState: 'ready', state: 'pending', nodeId: undefined }),
    ], { state: 'updating', message: '', at: 0 });
    assert.deepEqual(startStrandedTasks(st), ['new1']);
    assert.equal(st.tasks.get('new1')!.desiredState, 'running');
    assert.equal(st.tasks.get('new2')!.desiredState, 'ready', 'old2 may still run');
    st.tasks.set('old2', { ...st.tasks.get('old2')!, state: 'shutdown' });
    assert.deepEqual(startStrandedTasks(st), ['new2']);
    assert.deepEqual(startStrandedTasks(st), []);
  });
});
