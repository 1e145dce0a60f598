/**
 * Standalone containers in the worker (`netctl run`): run once, kept after they exit with their
 * exit code (wait resolves), never restarted, untouched by the manager's list, removed on request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { workerRig } from '../../../helpers/worker-rig.js';
import { standaloneAssignment } from '../../../../src/core/standalone/run.js';

const ID = 'c0ffee0123456789abcdef01';
const grant = { id: ID, name: 'probe', networks: [{ network: { id: 'netapp', name: 'app', vni: 4200, subnet: '10.77.0.0/24', gateway: '10.77.0.1' }, ip: '10.77.0.9' }] };

test('a standalone container runs once: exit code kept and waited for, never restarted, removed on request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-standalone-'));
  const r = workerRig(dir);
  try {
    await r.overlay.start();
    await r.worker.start();
    await r.until('active', () => r.overlay.active);
    r.worker.standalone.add(standaloneAssignment(grant, { image: 'probe', argv: ['sleep', '60'], env: {}, runtime: 'netns' }));
    await r.drive('started', r.worker.standaloneChanged());
    const view = () => r.worker.tasksView().find((t) => t.id === ID);
    assert.equal(view()?.state, 'running');
    assert.equal(view()?.standalone, true);
    // The manager's list replaces the assigned tasks only.
    r.worker.setAssignments([], { managed: true });
    await r.drive('idle', r.worker.idle());
    assert.equal(view()?.state, 'running', 'the manager\'s (empty) list does not stop it');
    const waited = r.worker.standalone.wait(ID);
    r.runtime.exit(ID, 3);
    await r.until('exited', () => view()?.state === 'failed');
    assert.equal(await waited, 3);
    assert.equal(view()?.exitCode, 3);
    await r.drive('idle', r.worker.idle());
    r.worker.kick();
    await r.drive('idle', r.worker.idle());
    assert.equal(view()?.state, 'failed', 'not restarted');
    assert.ok(!r.runtime.stopped.some((s) => s.id === ID), 'kept after its exit (output, exit code) until removed');
    assert.equal(await r.worker.standalone.wait(ID), 3, 'a wait after the exit answers at once');
    r.worker.standalone.delete(ID);
    await r.drive('removed', r.worker.standaloneChanged());
    assert.deepEqual(r.runtime.stopped.filter((s) => s.id === ID).map((s) => s.graceMs), [0], 'removed (rm -f: no grace)');
    assert.equal(view(), undefined);
  } finally {
    await r.drive('worker stopped', r.worker.stop());
    await r.drive('overlay stopped', r.overlay.stop());
    rmSync(dir, { recursive: true, force: true });
  }
});
