/** When an LB apply must first wait for the overlay: only when it adds an active backend on another node. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addsRemoteBackend } from '../../../src/agent/lb.js';
import type { Backend, LbDesired } from '../../../src/core/lb/model.js';

const vip = (backends: Backend[]): LbDesired => ({ services: [{ id: 's', name: 'web', vip: '10.0.0.2', ports: [{ proto: 'tcp', port: 80, targetPort: 80 }], backends }], ingress: [] });
const ing = (backends: Backend[]): LbDesired => ({ services: [], ingress: [{ service: 's', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'cluster', backends }] });
const A: Backend = { id: 'a', ip: '10.0.0.11', state: 'active' };
const B: Backend = { id: 'b', ip: '10.0.0.12', state: 'active' };
const L: Backend = { id: 'l', ip: '10.0.0.13', state: 'active', local: true };

test('addsRemoteBackend: table', () => {
  const cases: Array<[string, LbDesired, LbDesired | undefined, boolean]> = [
    ['first apply with a remote backend', vip([A]), undefined, true],
    ['first apply with only a local backend', vip([L]), undefined, false],
    ['nothing new', vip([A, B]), vip([A, B]), false],
    ['a remote backend added', vip([A, B]), vip([A]), true],
    ['a local backend added', vip([A, L]), vip([A]), false],
    ['a backend removed', vip([A]), vip([A, B]), false],
    ['a backend draining', vip([A, { ...B, state: 'draining' }]), vip([A, B]), false],
    ['a draining backend becomes active again', vip([A, B]), vip([A, { ...B, state: 'draining' }]), true],
    ['same task, new address', vip([{ ...A, ip: '10.0.0.99' }]), vip([A]), true],
    ['ingress: remote added', ing([A, B]), ing([A]), true],
    ['ingress: unchanged', ing([A]), ing([A]), false],
  ];
  for (const [name, want, applied, expect] of cases) assert.equal(addsRemoteBackend(want, applied), expect, name);
});
