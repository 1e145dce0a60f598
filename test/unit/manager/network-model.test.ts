/** issue #15's network rows: driver/options/labels checks, ls filters, service rules, dispatch of macvlan. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkNetworkCreate, checkServiceNetworks, filterNetworks, type NetworkCreateBody } from '../../../src/manager/control/network-model.js';
import { networkCreateSchema, networkView, type NetworkRecord, type ServiceRecord, type TaskRecord } from '../../../src/manager/control/model.js';
import { assignmentFor } from '../../../src/manager/control/dispatch.js';
import { ControlState } from '../../../src/manager/control/state.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecOf } from '../../../src/core/spec/types.js';
import { endpointRecord } from '../../../src/agent/worker/plan.js';
import { runtimeAttachmentsOf } from '../../../src/agent/worker/start.js';
import { isMeshError } from '../../../src/core/errors.js';

const code = (c: string, re: RegExp) => (e: unknown): boolean => isMeshError(e) && e.code === c && re.test(e.message);
const body = (over: Partial<NetworkCreateBody>): NetworkCreateBody => networkCreateSchema.parse({ name: 'lan', ...over }) as NetworkCreateBody;

describe('checkNetworkCreate', () => {
  test('overlay with ip-range, aux addresses, internal and labels', () => {
    const r = checkNetworkCreate(body({ subnet: '10.50.0.0/24', ipRange: '10.50.0.128/25', auxAddresses: { a: '10.50.0.200' }, internal: true, labels: { env: 'prod', 'com.example.team': '' } }));
    assert.deepEqual(r.ipam, { name: 'lan', attachable: false, subnet: '10.50.0.0/24', ipRange: '10.50.0.128/25', auxAddresses: { a: '10.50.0.200' } });
    assert.deepEqual(r.extra, { driver: 'overlay', internal: true, labels: { env: 'prod', 'com.example.team': '' } });
  });
  test('macvlan (seed 000\'s example, parent eth0)', () => {
    const r = checkNetworkCreate(body({ driver: 'macvlan', subnet: '192.168.0.0/16', ipRange: '192.168.41.0/24', gateway: '192.168.41.1', auxAddresses: { favoriate_ip_ever: '192.168.41.2' }, options: { parent: 'eth0' } }));
    assert.deepEqual(r.extra, { driver: 'macvlan', options: { parent: 'eth0', macvlan_mode: 'bridge' } });
    assert.equal(r.ipam.gateway, '192.168.41.1');
  });
  test('refusals carry stable codes', () => {
    assert.throws(() => checkNetworkCreate(body({ driver: 'bridge' })), code('MESHD_UNSUPPORTED', /unsupported network driver "bridge": meshd has overlay and macvlan/));
    assert.throws(() => checkNetworkCreate(body({ options: { encrypted: '' } })), code('MESHD_UNSUPPORTED', /overlay driver option "encrypted"/));
    assert.throws(() => checkNetworkCreate(body({ driver: 'macvlan', subnet: '10.1.0.0/24' })), code('MESHD_BAD_ARGUMENT', /needs -o parent=IFACE/));
    assert.throws(() => checkNetworkCreate(body({ driver: 'macvlan', options: { parent: 'eth0' } })), code('MESHD_BAD_ARGUMENT', /needs --subnet/));
    assert.throws(() => checkNetworkCreate(body({ driver: 'macvlan', subnet: '10.1.0.0/24', options: { parent: 'eth0; rm' } })), code('MESHD_BAD_ARGUMENT', /invalid parent interface/));
    assert.throws(() => checkNetworkCreate(body({ driver: 'macvlan', subnet: '10.1.0.0/24', options: { parent: 'eth0', macvlan_mode: 'vepa' } })), code('MESHD_UNSUPPORTED', /macvlan_mode "vepa"/));
    assert.throws(() => checkNetworkCreate(body({ driver: 'macvlan', subnet: '10.1.0.0/24', options: { parent: 'eth0', foo: '1' } })), code('MESHD_UNSUPPORTED', /macvlan driver option "foo"/));
    assert.throws(() => checkNetworkCreate(body({ driver: 'macvlan', subnet: '10.1.0.0/24', internal: true, options: { parent: 'eth0' } })), code('MESHD_UNSUPPORTED', /internal macvlan/));
    assert.throws(() => checkNetworkCreate(body({ labels: { 'a b': '1' } })), code('MESHD_BAD_ARGUMENT', /invalid label key/));
    assert.equal(networkCreateSchema.safeParse({ name: 'x', bogus: 1 }).success, false);
  });
});

const rec = (over: Partial<NetworkRecord>): NetworkRecord => ({ id: 'id0', name: 'n', driver: 'overlay', subnet: '10.9.0.0/24', gateway: '10.9.0.1', vni: 4100, attachable: false, ingress: false, createdAt: 0, ...over });

describe('network ls filters and view', () => {
  const list = [
    rec({ id: 'aaa1', name: 'front', labels: { env: 'prod', tier: 'web' } }),
    rec({ id: 'bbb2', name: 'back', labels: { env: 'dev' } }),
    rec({ id: 'ccc3', name: 'lan', driver: 'macvlan' }),
    rec({ id: 'ingress', name: 'ingress', ingress: true }),
  ];
  const names = (f: string[]): string[] => filterNetworks(list, f).map((n) => n.name);
  test('docker\'s keys', () => {
    assert.deepEqual(names(['label=env']), ['front', 'back']);
    assert.deepEqual(names(['label=env=prod']), ['front']);
    assert.deepEqual(names(['label=env=prod', 'label=env=dev']), [], 'label filters must all match (docker)');
    assert.deepEqual(names(['label=env', 'label=tier=web']), ['front']);
    assert.deepEqual(names(['driver=macvlan', 'driver=overlay', 'name=a']), ['back', 'lan'], 'other keys: any value');
    assert.deepEqual(names(['label=env', 'name=ba']), ['back']);
    assert.deepEqual(names(['driver=macvlan']), ['lan']);
    assert.deepEqual(names(['id=bb']), ['back']);
    assert.deepEqual(names(['type=builtin']), ['ingress']);
    assert.deepEqual(names([]), ['front', 'back', 'lan', 'ingress']);
    assert.throws(() => names(['colour=red']), code('MESHD_BAD_ARGUMENT', /invalid filter key "colour"/));
    assert.throws(() => names(['label']), code('MESHD_BAD_ARGUMENT', /KEY=VALUE/));
  });
  test('inspect shows every field, empty when unset', () => {
    const v = networkView(rec({}));
    assert.equal(v.ipRange, null);
    assert.deepEqual(v.auxAddresses, {});
    assert.deepEqual(v.labels, {});
    assert.equal(v.internal, false);
    assert.equal(v.scope, 'swarm');
  });
});

describe('services on internal and macvlan networks', () => {
  const spec = (ports: boolean) => parseServiceSpec({ name: 'web', image: 'whoami', networks: ['n'], ...(ports ? { ports: [{ published: 8080, target: 80 }] } : {}) });
  test('publishing is refused (MESHD_UNSUPPORTED), no ports is fine', () => {
    assert.throws(() => checkServiceNetworks(spec(true), [rec({ internal: true })]), code('MESHD_UNSUPPORTED', /network n is internal/));
    assert.throws(() => checkServiceNetworks(spec(true), [rec({ driver: 'macvlan' })]), code('MESHD_UNSUPPORTED', /publishing ports on macvlan network n/));
    checkServiceNetworks(spec(false), [rec({ internal: true }), rec({ driver: 'macvlan' })]);
    checkServiceNetworks(spec(true), [rec({})]);
  });
  test('a macvlan network gets no VIP; its assignment carries driver and parent; the record is dnsrr; the runtime gets a macvlan attachment', () => {
    const st = new ControlState();
    const mac = rec({ id: 'mv1', name: 'lan', driver: 'macvlan', options: { parent: 'eth0', macvlan_mode: 'bridge' }, subnet: '10.9.0.0/24' });
    const ov = rec({ id: 'ov1', name: 'app', subnet: '10.8.0.0/24', gateway: '10.8.0.1', vni: 4101 });
    for (const n of [mac, ov]) {
      st.ipam.create({ name: n.name, subnet: n.subnet, vni: n.vni });
      st.putNetwork(n);
    }
    const s = parseServiceSpec({ name: 'web', image: 'whoami', networks: ['lan', 'app'] });
    const svc: ServiceRecord = { id: 's1', version: 1, spec: s, vips: {}, createdAt: 0, updatedAt: 0 };
    svc.vips = st.setVips(svc, ['mv1', 'ov1']);
    assert.deepEqual(Object.keys(svc.vips), ['ov1']);
    const task: TaskRecord = {
      id: 'aaaaaaaaaaaa01', serviceId: 's1', slot: 1, nodeId: 'node1', specVersion: 1, spec: taskSpecOf(s), desiredState: 'running',
      state: 'assigned', timestamps: { created: 0, updated: 0 }, addresses: { mv1: '10.9.0.5', ov1: '10.8.0.5' },
    };
    const a = assignmentFor(task, svc, st.netsByName())!;
    assert.deepEqual(a.attachments[0]!.network, { id: 'mv1', name: 'lan', vni: 4100, subnet: '10.9.0.0/24', gateway: '10.9.0.1', driver: 'macvlan', parent: 'eth0' });
    assert.equal(a.attachments[0]!.vip, null);
    assert.equal(endpointRecord(a, a.attachments[0]!, 'n1', '10.99.0.1', 'running').endpointMode, 'dnsrr');
    assert.equal(endpointRecord(a, a.attachments[1]!, 'n1', '10.99.0.1', 'running').endpointMode, 'vip');
    const rt = runtimeAttachmentsOf(a, { prefix: 'm-', mtuOf: () => 1450 });
    assert.equal(rt[0]!.macvlanParent, 'eth0');
    assert.equal(rt[0]!.mtu, 0);
    assert.equal(rt[1]!.macvlanParent, undefined);
    assert.equal(rt[1]!.mtu, 1450);
  });
});
