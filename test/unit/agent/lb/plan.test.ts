/**
 * The agent LB's pure parts: records → VipService / IngressPublish (identity kept for unchanged
 * services), conflict resolution, host table render, and that every desired state it builds
 * compiles (a bad record must not poison a namespace).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { EndpointRecord } from '../../../../src/core/endpoints.js';
import { compile } from '../../../../src/core/lb/model.js';
import { backendsOf, dropIngressConflicts, dropVipConflicts, VipConflictMemo, hostPublishesOf, hostVethName, ingressOf, parseIngressAddr, renderHostIngress, sboxRecord, vipServiceOf } from '../../../../src/agent/lb/plan.js';
import { renderHostModeTaskTable } from '../../../../src/agent/lb/host.js';
import { INGRESS_NETWORK } from '../../../../src/core/endpoints.js';
import { encodeEndpoint } from '../../../../src/core/endpoints.js';
import { MeshError } from '../../../../src/core/errors.js';
import { LbState } from '../../../../src/agent/lb/state.js';

function rec(taskId: string, over: Partial<EndpointRecord> = {}): EndpointRecord {
  return {
    v: 1, taskId, taskName: `web.${taskId}`, serviceId: 'svcweb', serviceName: 'web', network: 'app', networkName: 'app',
    ip: '10.30.0.11', mac: '02:42:0a:1e:00:0b', node: 'n1', nodeIp: '10.99.1.1', vip: '10.30.0.2', endpointMode: 'vip',
    aliases: [], ports: [{ proto: 'tcp', target: 80 }], state: 'running', ...over,
  };
}

describe('lb-plan', () => {
  test('backends: one per address, active wins over draining; local flag', () => {
    const bs = backendsOf([rec('a', { ip: '10.30.0.11', state: 'draining' }), rec('b', { ip: '10.30.0.11' }), rec('c', { ip: '10.30.0.12', node: 'n2' })], 'n1');
    assert.deepEqual(bs, [{ id: 'b', ip: '10.30.0.11', state: 'active', local: true }, { id: 'c', ip: '10.30.0.12', state: 'active' }]);
  });

  test('vip service: VIP port = target port; dnsrr / no VIP / no port → null', () => {
    const s = vipServiceOf([rec('a'), rec('b', { ip: '10.30.0.12', state: 'draining', ports: [{ proto: 'udp', target: 53 }] })], 'n1');
    assert.deepEqual(s?.ports, [{ proto: 'tcp', port: 80, targetPort: 80 }, { proto: 'udp', port: 53, targetPort: 53 }]);
    assert.equal(s?.vip, '10.30.0.2');
    assert.equal(vipServiceOf([rec('a', { endpointMode: 'dnsrr' })], 'n1'), null);
    assert.equal(vipServiceOf([rec('a', { vip: null })], 'n1'), null);
    assert.equal(vipServiceOf([rec('a', { ports: [] })], 'n1'), null);
    assert.ok(compile({ services: [s!], ingress: [] }).size === 2);
  });

  test('conflicts: first service per VIP:port and per published port wins', () => {
    const a = vipServiceOf([rec('a')], 'n1')!;
    const b = { ...a, id: 'other' };
    const r = dropVipConflicts([a, b]);
    assert.deepEqual(r.services, [a]);
    assert.deepEqual(r.conflicts, ['other']);
    const g = { service: 's1', publishedPort: 8080, proto: 'tcp' as const, targetPort: 80, policy: 'cluster' as const, backends: [] };
    assert.deepEqual(dropIngressConflicts([g, { ...g, service: 's2' }, { ...g, proto: 'udp' }]).conflicts, ['s2 tcp/8080']);
  });

  test('ingress publishes: policy passes through (default cluster); host mode and unpublished ports are not ingress', () => {
    const ports = [{ proto: 'tcp' as const, target: 80, published: 8080 }, { proto: 'tcp' as const, target: 81, published: 8081, policy: 'local' as const },
      { proto: 'tcp' as const, target: 82, published: 8082, mode: 'host' as const }, { proto: 'tcp' as const, target: 83 }];
    const g = ingressOf([rec('a', { network: 'ingress', ports })], 'n1');
    assert.deepEqual(g.map((x) => [x.publishedPort, x.targetPort, x.policy]), [[8080, 80, 'cluster'], [8081, 81, 'local']]);
    assert.equal(g[0]!.backends[0]!.local, true);
  });

  test('host ingress table: atomic replace, one element per published port', () => {
    const t = renderHostIngress('10.99.1.2', [{ proto: 'tcp', port: 8080 }, { proto: 'tcp', port: 8080 }, { proto: 'udp', port: 53 }]);
    assert.match(t, /^add table ip meshd-ingress\ndelete table ip meshd-ingress\n/);
    assert.match(t, /elements = \{ tcp \. 8080, udp \. 53 \}/);
    assert.match(t, /ip daddr 10\.99\.1\.2 meta l4proto \. th dport @published dnat to 172\.31\.255\.2/);
    assert.doesNotMatch(renderHostIngress('10.99.1.2', []), /elements/);
  });
});

describe('lb-plan VipConflictMemo', () => {
  test('gives what dropVipConflicts gives, change after change (VIP moves, emptiness flips, port changes)', () => {
    const st = new LbState('n1');
    const memo = new VipConflictMemo();
    let seed = 11;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    let fast = 0;
    for (let i = 0; i < 2000; i++) {
      const svc = rnd(8);
      const key = `t${rnd(24)}`;
      if (rnd(6) === 0) st.set('app', key, null);
      else {
        st.set('app', key, rec(key, {
          serviceId: `s${svc}`, serviceName: `svc${svc}`, vip: `10.30.1.${rnd(10) === 0 ? 99 : svc + 1}`, ip: `10.30.2.${rnd(50) + 1}`,
          ports: [{ proto: 'tcp', target: rnd(10) === 0 ? 81 : 80 }], node: 'n2', state: rnd(3) === 0 ? 'draining' : 'running',
        }));
      }
      const svcs = st.vipServices('app');
      const before = svcs.map((x) => x);
      const got = memo.run(svcs);
      assert.deepEqual(got, dropVipConflicts(before), `step ${i}`);
      if (got.conflicts.length === 0) fast++;
    }
    assert.ok(fast > 100, 'the no-conflict path was exercised');
  });
});

describe('lb-state', () => {
  test('unchanged services keep their identity; a change replaces only its service', () => {
    const st = new LbState('n1');
    st.set('app', 'a', rec('a'));
    st.set('app', 'x', rec('x', { serviceId: 'svcapi', serviceName: 'api', vip: '10.30.0.3', ip: '10.30.0.21' }));
    const [api1, web1] = st.vipServices('app');
    assert.equal(api1?.name, 'api');
    assert.equal(st.vipServices('app')[1], web1, 'same object when nothing changed');
    assert.equal(st.set('app', 'a', rec('a')), null, 'identical record: no change');
    st.set('app', 'b', rec('b', { ip: '10.30.0.12', node: 'n2' }));
    const [api2, web2] = st.vipServices('app');
    assert.equal(api2, api1);
    assert.notEqual(web2, web1);
    assert.equal(web2?.backends.length, 2);
    st.set('app', 'b', rec('b', { ip: '10.30.0.12', node: 'n2', state: 'draining' }));
    assert.deepEqual(st.vipServices('app')[1]?.backends.map((b) => b.state), ['active', 'draining']);
  });

  test('indexes agree with a scan of every record under random churn (moves between services, nodes, networks)', () => {
    const st = new LbState('n1');
    const all = new Map<string, EndpointRecord>(); // `${net}\0${key}` → record, the brute-force reference
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    for (let i = 0; i < 3000; i++) {
      const net = ['app', 'db', 'ingress'][rnd(3)]!;
      const key = `t${rnd(40)}`;
      if (rnd(5) === 0) {
        st.set(net, key, null);
        all.delete(`${net}\0${key}`);
        continue;
      }
      const svc = rnd(6);
      const r = rec(key, { network: net, serviceId: `s${svc}`, serviceName: `svc${svc}`, vip: `10.30.1.${svc + 1}`, ip: `10.30.2.${rnd(200) + 1}`, node: rnd(3) === 0 ? 'n1' : 'n2', state: rnd(4) === 0 ? 'draining' : 'running' });
      st.set(net, key, r);
      all.set(`${net}\0${key}`, r);
      if (i % 97 !== 0) continue;
      const recs = [...all.entries()].map(([k, x]) => ({ net: k.slice(0, k.indexOf('\0')), r: x }));
      const local = new Map<string, Set<string>>();
      for (const { net: n, r: x } of recs) if (x.node === 'n1' && n !== INGRESS_NETWORK) local.set(x.taskId, (local.get(x.taskId) ?? new Set()).add(n));
      assert.deepEqual(new Map([...st.localTasks()].map(([t, v]) => [t, v.networks])), local, `local tasks at step ${i}`);
      assert.equal(st.localRecords().length, recs.filter(({ net: n, r: x }) => x.node === 'n1' && n !== INGRESS_NETWORK).length);
      for (const n of ['app', 'db']) {
        for (const v of st.vipServices(n)) {
          const want = recs.filter(({ net: m, r: x }) => m === n && x.serviceId === v.id).map(({ r: x }) => x);
          if (want.length) assert.deepEqual(v, vipServiceOf(want, 'n1'), `service ${v.id} on ${n} at step ${i}`);
          else assert.deepEqual(v.backends, [], 'a service scaled to 0 stays, with no backend');
        }
        const ids = new Set(recs.filter(({ net: m }) => m === n).map(({ r: x }) => x.serviceId));
        for (const id of ids) assert.ok(st.vipServices(n).some((v) => v.id === id), `service ${id} listed on ${n}`);
      }
    }
  });

  test('local tasks and ingress publishes', () => {
    const st = new LbState('n1');
    st.set('app', 'a', rec('a'));
    st.set('app', 'b', rec('b', { node: 'n2', ip: '10.30.0.12' }));
    const ing = { network: 'ingress', networkName: 'ingress', vip: null, ports: [{ proto: 'tcp' as const, target: 80, published: 8080 }] };
    st.set('ingress', 'a', rec('a', { ...ing, ip: '10.255.0.11' }));
    st.set('ingress', 'b', rec('b', { ...ing, ip: '10.255.0.12', node: 'n2' }));
    st.set('ingress', 'sbox-n2', rec('sbox-n2', { ...ing, serviceId: 'ingress-sbox', ip: '10.255.255.2', ports: [] }));
    assert.deepEqual([...st.localTasks().keys()], ['a']);
    const g = st.ingress();
    assert.equal(g.length, 1);
    assert.deepEqual(g[0]!.backends.map((b) => b.ip), ['10.255.0.11', '10.255.0.12']);
    assert.equal(st.ingress()[0], g[0]);
    assert.ok(compile({ services: [], ingress: g }).size === 1);
    assert.equal(st.localRecord('a')?.network, 'app');
    st.set('app', 'a', null);
    assert.equal(st.localTasks().size, 0);
  });
});

describe('lb-state: scaled to zero', () => {
  test('a service whose last record is deleted keeps its VIP with no backend (rejects); a live service reusing the VIP wins', () => {
    const st = new LbState('n1');
    st.set('app', 'a', rec('a'));
    st.set('app', 'a', null);
    const [s] = st.vipServices('app');
    assert.equal(s?.vip, '10.30.0.2');
    assert.deepEqual(s?.backends, []);
    assert.equal(st.vipServices('app')[0], s, 'stable identity');
    st.set('app', 'n', rec('n', { serviceId: 'newsvc', serviceName: 'new', ip: '10.30.0.40' }));
    const kept = dropVipConflicts(st.vipServices('app'));
    assert.deepEqual(kept.services.map((x) => x.id), ['newsvc']);
    assert.deepEqual(kept.conflicts, ['svcweb']);
    st.dropNetwork('app');
    assert.deepEqual(st.vipServices('app'), []);
  });
});

describe('ingress addresses', () => {
  test('parseIngressAddr: host addresses of 10.255.0.0/16 except the gateway; MAC derived', () => {
    assert.deepEqual(parseIngressAddr({ ip: '10.255.255.1' }), { ip: '10.255.255.1', mac: '02:42:0a:ff:ff:01' });
    assert.equal(parseIngressAddr({ ip: '10.255.0.9', mac: '02:00:00:00:00:01' }).mac, '02:00:00:00:00:01');
    for (const bad of [null, {}, { ip: 5 }, { ip: 'x' }, { ip: '10.254.0.1' }, { ip: '10.255.0.0' }, { ip: '10.255.255.255' }, { ip: '10.255.0.1' }, { ip: '10.255.0.9', mac: 'AA:BB' }]) {
      assert.throws(() => parseIngressAddr(bad), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT', JSON.stringify(bad));
    }
  });

  test('sbox record is a valid endpoint record keyed by its task id', () => {
    const r = sboxRecord('n1', '10.99.1.1', { ip: '10.255.255.1', mac: '02:42:0a:ff:ff:01' });
    assert.equal(r.taskId, 'sbox-n1');
    assert.ok(encodeEndpoint(r).length > 0);
  });
});

describe('host publish mode plan', () => {
  const hp = (p: Partial<EndpointRecord['ports'][number]> = {}): EndpointRecord['ports'] => [{ proto: 'tcp', target: 80, published: 8080, mode: 'host', ...p }];
  test('only this node\'s tasks, only host-mode ports; one address per task (first network); local policy', () => {
    const recs = [
      rec('a', { ports: hp(), network: 'net2', ip: '10.31.0.5' }),
      rec('a', { ports: hp(), network: 'net1', ip: '10.30.0.5' }),
      rec('b', { ports: hp(), ip: '10.30.0.6', state: 'draining' }),
      rec('c', { ports: hp(), ip: '10.30.0.7', node: 'n2' }),
      rec('d', { ports: [{ proto: 'tcp', target: 80, published: 9090, mode: 'ingress' }], ip: '10.30.0.8' }),
      rec('e', { ports: hp(), network: INGRESS_NETWORK, ip: '10.255.0.9' }),
    ];
    const pubs = hostPublishesOf(recs, 'n1');
    assert.deepEqual(pubs, [{ service: 'svcweb', publishedPort: 8080, proto: 'tcp', targetPort: 80, policy: 'local', mode: 'host', backends: [{ id: 'a', ip: '10.30.0.5', state: 'active', local: true }, { id: 'b', ip: '10.30.0.6', state: 'draining', local: true }] }]);
    assert.equal(compile({ services: [], ingress: pubs }).get('ingress tcp 8080')!.targets.length, 1);
  });
  test('a node without a host-mode task publishes nothing (the port stays closed)', () => {
    assert.deepEqual(hostPublishesOf([rec('c', { ports: hp(), node: 'n2' })], 'n1'), []);
  });
  test('two services on one host port (the scheduler forbids it): first by task id wins, never a mix', () => {
    const pubs = hostPublishesOf([rec('a', { ports: hp() }), rec('b', { ports: hp(), serviceId: 'svcother', ip: '10.30.0.6' })], 'n1');
    assert.equal(pubs.length, 1);
    assert.deepEqual(pubs[0]!.backends.map((x) => x.id), ['a']);
  });
  test('task namespace table: marks connections from the host veth, replies carry the mark', () => {
    const t = renderHostModeTaskTable();
    assert.match(t, /^table ip meshd-hostmode\ndelete table ip meshd-hostmode\n/);
    assert.match(t, /iifname "mhost0" ct state new ct mark set 0x4d48/);
    assert.match(t, /type route hook output .*\n\t\tct mark 0x4d48 meta mark set 0x4d48/);
    assert.equal(hostVethName('0123456789abcdef'), 'vh-0123456789ab');
  });
});
