/**
 * Worker + overlay subsystems in-process with fakes (FakeRuntime, FakeOverlayKernel,
 * FakeVxlanGuard, an in-memory gossip port): validation, converge, endpoint records,
 * drain order, remote endpoints (bad/own records), dead-member grace, adoption on restart.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeGossip } from '../../../helpers/fake-gossip.js';
import { workerRig, withWorkerRig } from '../../../helpers/worker-rig.js';
import { FakeOverlayKernel } from '../../../../src/adapters/netlink/fake.js';
import { FakeRuntime } from '../../../../src/adapters/runtime/fake.js';
import type { AssignmentInput } from '../../../../src/core/assignments.js';
import { decodeEndpoint, encodeEndpoint } from '../../../../src/core/endpoints.js';
import { MeshError } from '../../../../src/core/errors.js';
import type { GossipEvent } from '../../../../src/core/gossip/index.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';
import { endpointRecord, validateAssignments } from '../../../../src/agent/worker/plan.js';

const NET = { id: 'net1', name: 'app', vni: 4101, subnet: '10.30.0.0/24', gateway: '10.30.0.1' };
const task = (id: string, ip: string, extra: Partial<AssignmentInput> = {}): AssignmentInput => ({
  task: { id, name: `web.${id}`, serviceId: 's1', serviceName: 'web', image: 'whoami' },
  desiredState: 'running',
  attachments: [{ network: NET, ip, prefix: 24, mac: macFromIp(ip), vip: '10.30.0.2' }],
  ...extra,
});

/** The rig (test/helpers/worker-rig.ts) with this file's drain period: 100 ms. */
function rig(dataDir: string, runtime?: FakeRuntime, kernel?: FakeOverlayKernel, gossip?: FakeGossip, dockerRuntime?: FakeRuntime) {
  return workerRig(dataDir, { ...(runtime ? { runtime } : {}), ...(kernel ? { kernel } : {}), ...(gossip ? { gossip } : {}), worker: { drainMs: 100, ...(dockerRuntime ? { dockerRuntime } : {}) } });
}

describe('validateAssignments', () => {
  test('accepts a consistent list, bare or wrapped', () => {
    assert.equal(validateAssignments([task('a1', '10.30.0.11'), task('a2', '10.30.0.12')]).length, 2);
    assert.equal(validateAssignments({ assignments: [] }).length, 0);
  });
  const cases: Array<[string, unknown, RegExp]> = [
    ['not a list', { x: 1 }, /JSON array/],
    ['schema', [{ task: {} }], /assignments\[0\]\.task/],
    ['duplicate id', [task('a1', '10.30.0.11'), task('a1', '10.30.0.12')], /assigned twice/],
    ['short id collision', [task('abcdefghijklX', '10.30.0.11'), task('abcdefghijklY', '10.30.0.12')], /first 12 characters/],
    ['same ip', [task('a1', '10.30.0.11'), task('a2', '10.30.0.11')], /both have 10\.30\.0\.11/],
    ['outside subnet', [task('a1', '10.31.0.11')], /outside 10\.30\.0\.0\/24/],
    ['gateway', [task('a1', '10.30.0.1')], /gateway/],
    ['broadcast', [task('a1', '10.30.0.255')], /broadcast/],
    ['prefix mismatch', [{ ...task('a1', '10.30.0.11'), attachments: [{ network: NET, ip: '10.30.0.11', prefix: 16, mac: macFromIp('10.30.0.11'), vip: null }] }], /prefix \/16/],
    ['host bits', [{ ...task('a1', '10.30.0.11'), attachments: [{ network: { ...NET, subnet: '10.30.0.5/24' }, ip: '10.30.0.11', prefix: 24, mac: macFromIp('10.30.0.11'), vip: null }] }], /host bits/],
    ['network defined twice', [task('a1', '10.30.0.11'), { ...task('a2', '10.30.0.12'), attachments: [{ network: { ...NET, vni: 9 }, ip: '10.30.0.12', prefix: 24, mac: macFromIp('10.30.0.12'), vip: null }] }], /defined differently/],
    ['shared vni', [task('a1', '10.30.0.11'), { ...task('a2', '10.30.0.12'), attachments: [{ network: { ...NET, id: 'net2' }, ip: '10.30.0.12', prefix: 24, mac: macFromIp('10.30.0.12'), vip: null }] }], /share VNI/],
  ];
  for (const [name, body, re] of cases) {
    test(`rejects: ${name}`, () => {
      assert.throws(() => validateAssignments(body), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message));
    });
  }
  test('a shutdown task may reuse an address', () => {
    assert.equal(validateAssignments([task('a1', '10.30.0.11'), task('a2', '10.30.0.11', { desiredState: 'shutdown' })]).length, 2);
  });
  test('endpoint records pass the shared schema', () => {
    const [a] = validateAssignments([task('a1', '10.30.0.11', { ports: [{ proto: 'tcp', target: 80, published: 8080, mode: 'ingress' }] })]);
    const r = endpointRecord(a!, a!.attachments[0]!, 'n1', '10.99.1.1', 'draining');
    const d = decodeEndpoint(encodeEndpoint(r));
    assert.ok(d.ok);
    assert.equal(d.record.state, 'draining');
    assert.equal(d.record.vip, '10.30.0.2');
  });
});

describe('worker + overlay with fakes', () => {
  test('converge: start, publish, remote endpoints, drain then stop, restart adoption', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshd-worker-'));
    try {
      const r = rig(dir);
      await r.overlay.start();
      await r.worker.start();
      await r.until('active', () => r.overlay.active);
      assert.throws(() => r.worker.setAssignments([{ nope: 1 }]), MeshError);
      r.worker.setAssignments([task('a1', '10.30.0.11'), task('a2', '10.30.0.12')]);
      await r.until('running', () => r.worker.tasksView().every((t) => t.state === 'running') && r.worker.tasksView().length === 2);
      const started = r.runtime.tasks.get('a1')!;
      assert.deepEqual(started.attach, { sandboxNs: 'pfx-ov-net1', bridge: 'br0', ip: '10.30.0.11', prefix: 24, gateway: '10.30.0.1', mac: macFromIp('10.30.0.11'), mtu: 1450 });
      assert.equal(started.spec.builtin, 'whoami');
      assert.deepEqual([...r.gossip.joined], ['net1']);
      assert.equal(r.gossip.record('net1', 'a1')?.state, 'running');
      assert.equal(r.gossip.record('net1', 'a1')?.nodeIp, '10.99.1.1');
      assert.deepEqual(r.kernel.state.sandboxes.map((s) => s.ns), ['pfx-ov-net1']);

      // Remote endpoints: a good one from n2, a bad one, one claiming to be ours.
      r.gossip.membersList.push({ name: 'n2', addr: '10.99.1.2:7946', state: 'alive', incarnation: 1 });
      r.gossip.emit({ type: 'member-join', name: 'n2', addr: '10.99.1.2:7946', incarnation: 1 } as GossipEvent);
      const remote = (id: string, ip: string, node = 'n2'): Uint8Array => encodeEndpoint({ ...endpointRecord(validateAssignments([task(id, ip)])[0]!, validateAssignments([task(id, ip)])[0]!.attachments[0]!, node, node === 'n2' ? '10.99.1.2' : '10.99.1.1', 'running') });
      r.gossip.emit({ type: 'create', network: 'net1', table: 'endpoints', key: 'b1', value: remote('b1', '10.30.0.21'), owner: 'n2' });
      r.gossip.emit({ type: 'create', network: 'net1', table: 'endpoints', key: 'bad', value: new TextEncoder().encode('{"v":1}'), owner: 'n2' });
      r.gossip.emit({ type: 'create', network: 'net1', table: 'endpoints', key: 'own', value: remote('own', '10.30.0.22', 'n1'), owner: 'n2' });
      await r.drive('overlay settled', r.overlay.settled());
      const st = await r.overlay.status();
      assert.deepEqual(st.actual.sandboxes[0]!.fdb, [{ mac: macFromIp('10.30.0.21'), dst: '10.99.1.2' }]);
      assert.deepEqual(st.badRecords, { 'endpoint-schema': 1 });
      assert.deepEqual(st.desired.guardAllow, ['10.99.1.2']);

      // Dead member: its entries are kept for deadGraceMs, then removed.
      r.gossip.membersList[1]!.state = 'dead';
      r.gossip.emit({ type: 'member-dead', name: 'n2', addr: '10.99.1.2:7946', incarnation: 1 } as GossipEvent);
      r.gossip.emit({ type: 'delete', network: 'net1', table: 'endpoints', key: 'b1', value: new Uint8Array(), owner: 'n2' });
      await r.drive('overlay settled', r.overlay.settled());
      assert.equal((await r.overlay.status()).actual.sandboxes[0]!.fdb.length, 1, 'kept during grace');
      await r.until('removed after grace', async () => (await r.overlay.status()).actual.sandboxes[0]!.fdb.length === 0, 2000);
      assert.deepEqual((await r.overlay.status()).desired.guardAllow, []);

      // Remove a2: drained (record 'draining') before the stop, then record deleted.
      r.worker.setAssignments([task('a1', '10.30.0.11')]);
      await r.until('draining', () => r.gossip.record('net1', 'a2')?.state === 'draining');
      assert.ok(r.runtime.tasks.has('a2'), 'not stopped while draining');
      await r.until('stopped', () => !r.runtime.tasks.has('a2') && !r.worker.tasksView().some((t) => t.id === 'a2'));
      assert.equal(r.gossip.record('net1', 'a2'), undefined);
      assert.deepEqual(r.runtime.stopped.map((s) => s.id), ['a2']);

      // Restart: a new agent adopts a1 (no restart of the process) and stops the unassigned stray.
      await r.drive('worker stopped', r.worker.stop());
      await r.drive('overlay stopped', r.overlay.stop());
      await r.runtime.start({ id: 'stray', name: 'stray', builtin: 'whoami' }, started.attachments);
      const pid = r.runtime.tasks.get('a1')!.pid;
      const r2 = rig(dir, r.runtime, r.kernel);
      await r2.overlay.start();
      await r2.worker.start();
      assert.equal(r2.worker.tasksView()[0]?.adopted, true);
      assert.ok(!r.runtime.tasks.has('stray'));
      await r2.until('active again', () => r2.overlay.active);
      await r2.drive('worker idle', r2.worker.idle());
      assert.equal(r.runtime.tasks.get('a1')!.pid, pid, 'same process');
      assert.equal(r2.gossip.record('net1', 'a1')?.state, 'running', 'republished');
      assert.deepEqual(r.kernel.state.sandboxes.map((s) => s.ns), ['pfx-ov-net1'], 'sandbox kept');

      // Everything unassigned: sandbox and network go.
      r2.worker.setAssignments([]);
      await r2.until('empty', async () => r2.worker.tasksView().length === 0 && (await r2.overlay.status()).actual.sandboxes.length === 0);
      assert.deepEqual([...r2.gossip.joined], []);
      await r2.drive('worker stopped', r2.worker.stop());
      await r2.drive('overlay stopped', r2.overlay.stop());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a task whose process exits is cleaned up and started again', async () => {
    await withWorkerRig('worker', { worker: { drainMs: 100 } }, async (r) => {
      r.worker.setAssignments([task('e1', '10.30.0.11')]);
      await r.until('running', () => r.worker.tasksView()[0]?.state === 'running');
      const pid = r.runtime.tasks.get('e1')!.pid;
      r.runtime.tasks.delete('e1'); // the process died
      // A kick alone does not list the runtime (exits are polled once per retryMs, not per converge).
      r.worker.kick();
      await r.drive('worker idle', r.worker.idle());
      assert.equal(r.worker.tasksView()[0]!.state, 'running', 'not polled by an ordinary converge');
      assert.equal(r.runtime.stopped.length, 0);
      r.clock.advance(60_000); // the rig's retryMs: the poll is due
      await r.drive('worker idle', r.worker.idle());
      // Reaped (cleanup stop with no grace), then started again in the same converge.
      assert.deepEqual(r.runtime.stopped.map((x) => [x.id, x.graceMs]), [['e1', 0]]);
      assert.equal(r.worker.tasksView()[0]!.state, 'running');
      assert.equal(r.gossip.record('net1', 'e1')?.state, 'running', 'republished');
      assert.notEqual(r.runtime.tasks.get('e1')!.pid, pid);
    });
  });

  test('managed (the list came from a manager): a task whose process exits stays failed for the manager to replace', async () => {
    await withWorkerRig('worker', { worker: { drainMs: 100 } }, async (r) => {
      r.worker.setAssignments([task('m1', '10.30.0.11')], { managed: true });
      await r.until('running', () => r.worker.tasksView()[0]?.state === 'running');
      r.runtime.tasks.delete('m1'); // the process died
      r.clock.advance(60_000); // the rig's retryMs: the exit poll is due
      await r.drive('worker idle', r.worker.idle());
      r.worker.kick();
      await r.drive('worker idle', r.worker.idle());
      assert.equal(r.worker.tasksView()[0]!.state, 'failed', 'reported failed, not restarted in place');
      assert.ok(!r.runtime.tasks.has('m1'));
      assert.equal(r.gossip.record('net1', 'm1'), undefined, 'its records are gone');
      // The manager shuts it down and places a replacement here: the removal of the already
      // detached task must not fail the converge that starts the replacement.
      r.worker.setAssignments([task('m2', '10.30.0.12')], { managed: true });
      await r.until('replacement running', () => r.worker.tasksView().some((t) => t.id === 'm2' && t.state === 'running'));
      assert.equal(r.gossip.record('net1', 'm2')?.state, 'running');
      // m1 is forgotten (the list shows what the node holds) but how it ended stays readable by id.
      assert.ok(!r.worker.tasksView().some((t) => t.id === 'm1'));
      // Failed, with its error: it had ended (its exit was cleaned up), so the replacement list that
      // took it away neither stopped it again nor rewrote it `stopped` (removal.ts, HeldTask.ended).
      assert.equal(r.worker.endedView('m1')?.id, 'm1');
      assert.equal(r.worker.endedView('m1')?.state, 'failed');
      assert.equal(r.worker.endedView('m1')?.error, 'task process exited');
      assert.equal(r.runtime.stopped.filter((x) => x.id === 'm1').length, 1, 'stopped once: the cleanup after the exit');
      assert.equal(r.worker.endedView('m2'), undefined);
    });
  });

  test('the last local task on `ingress` going away never makes the node leave ingress (its routing-mesh sandbox lives there)', async () => {
    await withWorkerRig('worker', { worker: { drainMs: 100 } }, async (r) => {
      const ING = { id: 'ingress', name: 'ingress', vni: 4096, subnet: '10.255.0.0/16', gateway: '10.255.0.1' };
      r.gossip.core.joinNetwork('ingress', 0); // what lb-ingress-side does at start
      r.worker.setAssignments([task('i1', '10.255.0.11', { attachments: [{ network: ING, ip: '10.255.0.11', prefix: 16, mac: macFromIp('10.255.0.11'), vip: null }] })]);
      await r.until('running', () => r.worker.tasksView()[0]?.state === 'running');
      r.worker.setAssignments([]);
      await r.until('gone', () => r.worker.tasksView().length === 0);
      assert.ok(r.gossip.joined.has('ingress'), 'still on ingress');
    });
  });

  test('a failing start is reported on the task, not thrown', async () => {
    await withWorkerRig('worker', { worker: { drainMs: 100 } }, async (r) => {
      r.worker.setAssignments([{ ...task('c1', '10.30.0.11'), task: { id: 'c1', name: 'c.1', serviceId: 's', serviceName: 'c', image: 'busybox' } }]);
      await r.until('failed', () => r.worker.tasksView()[0]?.state === 'failed');
      assert.match(r.worker.tasksView()[0]!.error ?? '', /netns runtime needs argv/);
    });
  });

  test('a task on two networks gets both attachments in assignment order and records on both', async () => {
    const NET2 = { id: 'net2', name: 'back', vni: 4102, subnet: '10.31.0.0/24', gateway: '10.31.0.1' };
    await withWorkerRig('worker', { worker: { drainMs: 100 } }, async (r) => {
      const t = task('m1', '10.30.0.11');
      r.worker.setAssignments([{ ...t, attachments: [...t.attachments!, { network: NET2, ip: '10.31.0.11', prefix: 24, mac: macFromIp('10.31.0.11'), vip: null }] }]);
      await r.until('running', () => r.worker.tasksView()[0]?.state === 'running');
      assert.deepEqual(r.runtime.tasks.get('m1')!.attachments.map((x) => [x.sandboxNs, x.ip, x.gateway]), [
        ['pfx-ov-net1', '10.30.0.11', '10.30.0.1'], ['pfx-ov-net2', '10.31.0.11', '10.31.0.1'],
      ]);
      assert.equal(r.gossip.record('net1', 'm1')?.state, 'running');
      assert.equal(r.gossip.record('net2', 'm1')?.ip, '10.31.0.11');
      assert.deepEqual(r.worker.tasksView()[0]!.ips, { app: '10.30.0.11', back: '10.31.0.11' });
    });
  });

  test('a runtime exit event fails a running docker task at once; the converge cleans up and restarts it', async () => {
    const docker = new FakeRuntime('pfx-');
    await withWorkerRig('worker', { worker: { drainMs: 100, dockerRuntime: docker } }, async (r) => {
      const t = task('x1', '10.30.0.11');
      r.worker.setAssignments([{ ...t, task: { ...t.task, runtime: 'docker', image: 'nginx:local' } }]);
      await r.until('running', () => r.worker.tasksView()[0]?.state === 'running');
      assert.equal(docker.tasks.get('x1')!.spec.image, 'nginx:local');
      docker.exit('x1', 137);
      assert.equal(r.worker.tasksView()[0]!.state, 'failed', 'failed synchronously, before any poll');
      assert.equal(r.worker.tasksView()[0]!.error, 'task process exited with code 137');
      await r.until('cleaned', () => docker.stopped.some((x) => x.id === 'x1' && x.graceMs === 0));
      await r.until('restarted', () => r.worker.tasksView()[0]?.state === 'running');
    });
  });

  test('a start error reaches the task unchanged (the manager matches the image-missing message)', async () => {
    const docker = new FakeRuntime('pfx-');
    docker.start = async () => {
      throw new MeshError('MESHD_IMAGE_NOT_FOUND', 'image nginx:9 not present on node n1');
    };
    await withWorkerRig('worker', { worker: { drainMs: 100, dockerRuntime: docker } }, async (r) => {
      const t = task('i1', '10.30.0.11');
      r.worker.setAssignments([{ ...t, task: { ...t.task, runtime: 'docker', image: 'nginx:9' } }]);
      await r.until('failed', () => r.worker.tasksView()[0]?.state === 'failed');
      assert.equal(r.worker.tasksView()[0]!.error, 'image nginx:9 not present on node n1');
    });
  });
});
