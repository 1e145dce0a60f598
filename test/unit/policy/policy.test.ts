/**
 * Policies between services (issue #19), the pure half: who is allowed on which attachment
 * (src/core/policy/desired.ts), the nft text (golden, render.ts), the spec field and its edits.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredPolicy, sortIps, verdict, type PolicyEndpoint, type PolicyTask } from '../../../src/core/policy/desired.js';
import { renderDelta, renderFull, renderRemove } from '../../../src/core/policy/render.js';
import { editAllowFrom } from '../../../src/core/policy/spec.js';
import { parseServiceSpec } from '../../../src/core/spec/validate.js';
import { taskSpecEqual, taskSpecOf } from '../../../src/core/spec/types.js';
import { isMeshError } from '../../../src/core/errors.js';

const EPS: Record<string, PolicyEndpoint[]> = {
  netapp: [
    { serviceName: 'web', ip: '10.0.1.5' }, { serviceName: 'web', ip: '10.0.1.6' },
    { serviceName: 'client', ip: '10.0.1.10' }, { serviceName: 'client', ip: '10.0.1.9' },
    { serviceName: 'rogue', ip: '10.0.1.20' },
  ],
  ingress: [{ serviceName: 'web', ip: '10.255.0.5' }],
};
const on = (net: string) => EPS[net] ?? [];
const web = (o: Partial<PolicyTask> = {}, defaultDeny = false): PolicyTask => ({
  taskId: 't1', serviceName: 'web',
  attachments: [{ networkId: 'netapp', networkName: 'app', ip: '10.0.1.5', defaultDeny }, { networkId: 'ingress', networkName: 'ingress', ip: '10.255.0.5' }],
  ...o,
});

describe('desired policy', () => {
  test('open: no allow-from on a normal network → no table', () => {
    assert.equal(desiredPolicy(web(), on), null);
  });
  test('allow-from on a normal network: only the listed services\' addresses; ingress never filtered', () => {
    const p = desiredPolicy(web({ allowFrom: ['client'] }), on)!;
    assert.deepEqual(p, { service: 'web', rules: [{ networkId: 'netapp', networkName: 'app', daddr: '10.0.1.5', mode: 'allow-from', allowFrom: ['client'], allowed: ['10.0.1.9', '10.0.1.10'] }] });
  });
  test('default-deny without allow-from: a rule that allows nobody', () => {
    const p = desiredPolicy(web({}, true), on)!;
    assert.equal(p.rules.length, 1);
    assert.equal(p.rules[0]!.mode, 'default-deny');
    assert.deepEqual(p.rules[0]!.allowed, []);
  });
  test('the own service is allowed only when listed (never its own address: that is lo)', () => {
    assert.deepEqual(desiredPolicy(web({ allowFrom: ['web'] }), on)!.rules[0]!.allowed, ['10.0.1.6']);
  });
  test('an empty list allows nobody, also on a normal network', () => {
    assert.deepEqual(desiredPolicy(web({ allowFrom: [] }), on)!.rules[0]!.allowed, []);
  });
  test('verdict names the policy, the source and the rule', () => {
    const p = desiredPolicy(web({ allowFrom: ['client'] }, true), on);
    assert.equal(verdict(p, '10.0.1.5', '10.0.1.9'), null);
    assert.equal(verdict(p, '10.0.1.5', '10.0.1.20'), 'denied by policy of web: 10.0.1.20 is not a task of an allowed service (network app is default-deny and allow-from is client)');
    assert.equal(verdict(p, '10.255.0.5', '10.255.0.1'), null, 'ingress address is not filtered');
    assert.equal(verdict(null, '10.0.1.5', '10.0.1.20'), null);
  });
  test('sortIps is numeric and drops duplicates', () => {
    assert.deepEqual(sortIps(['10.0.1.10', '10.0.1.9', '10.0.1.9', '9.0.0.1']), ['9.0.0.1', '10.0.1.9', '10.0.1.10']);
  });
});

const GOLDEN_FULL = `add table inet meshd-policy
delete table inet meshd-policy
table inet meshd-policy {
\tset allow-netapp {
\t\ttype ipv4_addr
\t\tcomment "web on app: default-deny allow-from client"
\t\telements = { 10.0.1.9, 10.0.1.10 }
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tct state established,related accept
\t\tiif "lo" accept
\t\tip daddr 10.0.1.5 ip saddr @allow-netapp accept
\t\tip daddr 10.0.1.5 meta l4proto tcp reject with tcp reset comment "denied by policy of web"
\t\tip daddr 10.0.1.5 reject with icmpx type port-unreachable comment "denied by policy of web"
\t\tip6 daddr { fe80::/10, ff00::/8 } meta l4proto tcp reject with tcp reset comment "denied by policy of web: link-local"
\t\tip6 daddr { fe80::/10, ff00::/8 } meta l4proto udp reject with icmpx type port-unreachable comment "denied by policy of web: link-local"
\t}
}
`;

describe('nft render (golden)', () => {
  const p = desiredPolicy(web({ allowFrom: ['client'] }, true), on)!;
  test('full', () => assert.equal(renderFull(p), GOLDEN_FULL));
  test('an endpoint change is one element delete + add, nothing else', () => {
    const next = desiredPolicy(web({ allowFrom: ['client'] }, true), (n) => [...on(n).filter((e) => e.ip !== '10.0.1.9'), { serviceName: 'client', ip: '10.0.1.11' }])!;
    assert.equal(renderDelta(p, next), 'delete element inet meshd-policy allow-netapp { 10.0.1.9 }\nadd element inet meshd-policy allow-netapp { 10.0.1.11 }\n');
    assert.equal(renderDelta(p, p), '');
  });
  test('an allow-from change re-creates the table; open removes it', () => {
    const next = desiredPolicy(web({ allowFrom: ['client', 'rogue'] }, true), on)!;
    assert.equal(renderDelta(p, next), renderFull(next));
    assert.equal(renderDelta(p, null), renderRemove());
    assert.equal(renderRemove(), 'add table inet meshd-policy\ndelete table inet meshd-policy\n');
    assert.equal(renderDelta(null, null), '');
  });
  test('an empty set has no elements line', () => {
    assert.ok(!renderFull(desiredPolicy(web({}, true), on)!).includes('elements'));
  });
});

describe('allowFrom in the service spec', () => {
  const base = { name: 'web', image: 'whoami' };
  test('validated names, duplicates dropped; absent stays absent', () => {
    assert.deepEqual(parseServiceSpec({ ...base, allowFrom: ['client', 'api', 'client'] }).allowFrom, ['client', 'api']);
    assert.equal('allowFrom' in parseServiceSpec(base), false);
    assert.deepEqual(parseServiceSpec({ ...base, allowFrom: [] }).allowFrom, []);
  });
  test('bad names and too many are MESHD_BAD_ARGUMENT naming the field', () => {
    assert.throws(() => parseServiceSpec({ ...base, allowFrom: ['Bad_Name'] }), (e) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT' && e.details?.field === 'allowFrom.0');
    assert.throws(() => parseServiceSpec({ ...base, allowFrom: Array.from({ length: 65 }, (_, i) => `s${i}`) }), (e) => isMeshError(e) && /at most 64/.test(e.message));
    assert.throws(() => parseServiceSpec({ ...base, allowFrom: 'client' }), (e) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT');
  });
  test('an allow-from change does not change the task spec (tasks are never replaced for it)', () => {
    const a = parseServiceSpec({ ...base, allowFrom: ['client'] });
    const b = parseServiceSpec({ ...base, allowFrom: ['other'] });
    assert.ok(taskSpecEqual(taskSpecOf(a), taskSpecOf(b)));
  });
  test('edits: replace, add, rm; rm of the last keeps an empty list (nobody), null replace opens', () => {
    assert.deepEqual(editAllowFrom(['a'], { add: ['b', 'a'] }), ['a', 'b']);
    assert.deepEqual(editAllowFrom(['a', 'b'], { rm: ['a'] }), ['b']);
    assert.deepEqual(editAllowFrom(['a'], { rm: ['a'] }), []);
    assert.equal(editAllowFrom(['a'], { replace: null }), undefined);
    assert.deepEqual(editAllowFrom(undefined, { add: ['c'] }), ['c']);
    assert.deepEqual(editAllowFrom(['a'], { replace: ['x'], add: ['y'], rm: ['x'] }), ['y']);
    assert.equal(editAllowFrom(undefined, {}), undefined);
  });
});
