/**
 * The LB drift check compares the kernel with what the loop last APPLIED (issue 14, item 2):
 * the loop sets a namespace's desired state before its apply returns, so comparing with the
 * desired state reported every change still in flight as drift, and the periodic check
 * answered each with a full resync.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryDataplane } from '../../../src/adapters/dataplane/memory.js';
import { lbStatus } from '../../../src/agent/lb-status.js';
import { newNsEntry } from '../../../src/agent/lb-types.js';
import type { Backend, LbDesired, VipService } from '../../../src/core/lb/model.js';

const svc = (backends: Backend[]): VipService => ({ id: 'web', name: 'web', vip: '10.30.0.2', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }], backends });
const one: LbDesired = { services: [svc([{ id: 'a', ip: '10.30.0.11', state: 'active' }])], ingress: [] };
const two: LbDesired = { services: [svc([{ id: 'a', ip: '10.30.0.11', state: 'active' }, { id: 'b', ip: '10.30.0.12', state: 'active' }])], ingress: [] };

test('an apply in flight (desired set, kernel still on the last applied state) is not drift', async () => {
  const dp = new MemoryDataplane();
  const e = newNsEntry('ns1', 'task', 't1');
  await dp.apply(one, { netns: 'ns1' });
  e.desired = two; // the loop's next plan, its transaction not committed yet
  const s = await lbStatus(dp, e, undefined, undefined, null, one);
  assert.deepEqual(s!.drift, []);
  const before = await lbStatus(dp, e);
  assert.ok(before!.drift.length > 0, 'compared with the desired state it looked like drift (the bug)');
});

test('a kernel that lost an element the loop applied is drift', async () => {
  const dp = new MemoryDataplane();
  const e = newNsEntry('ns1', 'task', 't1');
  await dp.apply(two, { netns: 'ns1' });
  e.desired = two;
  await dp.apply(one, { netns: 'ns1' }); // someone removed backend b by hand
  const s = await lbStatus(dp, e, undefined, undefined, null, two);
  assert.equal(s!.drift.length, 1, JSON.stringify(s!.drift));
});
