/**
 * Compose container keys (compose/container.ts) through parse and translate: volumes in short
 * and long syntax with top-level named volumes (`<stack>_<key>` like docker), labels,
 * hostname, working_dir, user, entrypoint, read_only, init, dns_opt, deploy.labels and
 * deploy.placement.max_replicas_per_node; refusals name the key path.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { parseCompose, planDeploy, translateStack } from '../../../src/core/compose/index.js';

const FILE = `
services:
  web:
    image: meshd/busybox:local
    volumes:
      - data:/data
      - /srv/conf:/etc/conf:ro
      - /cache
      - type: tmpfs
        target: /scratch
        tmpfs: {size: 1m, mode: 0o1777}
      - type: volume
        source: ext
        target: /ext
        read_only: true
    labels: {com.example.tier: front}
    hostname: "{{.Service.Name}}-{{.Task.Slot}}"
    working_dir: /srv
    user: "1000:1000"
    entrypoint: sh -c
    read_only: true
    init: true
    dns_opt: [ndots:2]
    ports: ["8000"]
    deploy:
      replicas: 3
      labels: [owner=shop]
      placement:
        max_replicas_per_node: 1
        preferences: [{spread: node.labels.zone}]
      restart_policy: {condition: none}
volumes:
  data:
  ext:
    external: true
    name: shared-ext
`;

describe('compose container keys', () => {
  const spec = translateStack('shop', parseCompose(FILE)).services[0]!;
  test('volumes: named (stack-prefixed), bind, anonymous, tmpfs, external', () => {
    assert.deepEqual(spec.container?.mounts, [
      { type: 'volume', source: 'shop_data', target: '/data' },
      { type: 'bind', source: '/srv/conf', target: '/etc/conf', readOnly: true },
      { type: 'volume', target: '/cache' },
      { type: 'tmpfs', target: '/scratch', tmpfsSizeBytes: 2 ** 20, tmpfsMode: 0o1777 },
      { type: 'volume', source: 'shared-ext', target: '/ext', readOnly: true },
    ]);
  });
  test('the other container keys', () => {
    const { mounts: _m, ...rest } = spec.container!;
    assert.deepEqual(rest, {
      labels: { 'com.example.tier': 'front' }, hostname: '{{.Service.Name}}-{{.Task.Slot}}', workdir: '/srv', user: '1000:1000',
      entrypoint: ['sh', '-c'], readOnly: true, init: true, dnsOptions: ['ndots:2'],
    });
  });
  test('deploy: labels, max_replicas_per_node, preferences, restart_policy; a target-only port', () => {
    assert.deepEqual([spec.labels, spec.maxReplicasPerNode, spec.preferences, spec.restartPolicy.condition], [{ owner: 'shop' }, 1, [{ spread: 'node.labels.zone' }], 'none']);
    assert.deepEqual(spec.ports.map((p) => [p.target, p.published]), [[8000, 0]]);
  });
  test('a redeploy of the same file is no update once the manager assigned the port', () => {
    const plan = translateStack('shop', parseCompose(FILE));
    const stored = { ...plan.services[0]!, ports: plan.services[0]!.ports.map((p) => ({ ...p, published: 30004 })) };
    const steps = planDeploy(plan, [{ id: 'x', version: 1, spec: stored }], ['shop-default']);
    assert.deepEqual(steps.map((s) => s.kind), ['unchanged-service']);
  });
});

describe('compose container keys: refusals name the key', () => {
  const svc = (extra: string, top = '') => `services:\n  web:\n    image: meshd/busybox:local\n${extra}${top}`;
  const cases: Array<[string, string, string, RegExp]> = [
    ['undeclared named volume', svc('    volumes: ["data:/d"]\n'), 'MESHD_BAD_ARGUMENT', /^services\.web\.volumes\[0\]: volume "data" is not declared/],
    ['relative bind', svc('    volumes: ["./d:/d"]\n'), 'MESHD_BAD_ARGUMENT', /^services\.web\.volumes\[0\]: bind source "\.\/d" must be an absolute path/],
    ['unknown mode', svc('    volumes: ["/a:/d:z"]\n'), 'MESHD_BAD_ARGUMENT', /^services\.web\.volumes\[0\]: mode "z"/],
    ['npipe', svc('    volumes: [{type: npipe, target: /d}]\n'), 'MESHD_BAD_ARGUMENT', /^services\.web\.volumes\[0\]\.type: expected bind, volume or tmpfs/],
    ['volume nocopy', svc('    volumes: [{type: volume, target: /d, volume: {nocopy: true}}]\n'), 'MESHD_UNSUPPORTED', /^services\.web\.volumes\[0\]\.volume: not supported/],
    ['volume driver', svc('', 'volumes:\n  v: {driver: nfs}\n'), 'MESHD_BAD_ARGUMENT', /^volumes\.v\.driver: only "local"/],
    ['max per node with global', svc('    deploy: {mode: global, placement: {max_replicas_per_node: 1}}\n'), 'MESHD_BAD_ARGUMENT', /max_replicas_per_node: can only be used with mode replicated/],
    ['read_only not a bool', svc('    read_only: yes\n'), 'MESHD_BAD_ARGUMENT', /^services\.web\.read_only: expected true or false/],
  ];
  for (const [name, body, code, re] of cases) {
    test(name, () => assert.throws(() => translateStack('s', parseCompose(body)), (e: unknown) => e instanceof MeshError && e.code === code && re.test(e.message)));
  }
  test('the manager\'s own rule, prefixed with the service path', () => {
    assert.throws(() => translateStack('s', parseCompose(svc('    hostname: "{{.Service.Labels}}"\n'))), /^MeshError: services\.web: container\.hostname: unknown template/);
  });
});
