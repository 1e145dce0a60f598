/**
 * The gossip table API with compact (binary) endpoint records (issue 18 §1): GET shows an endpoint record as its
 * JSON text whatever its encoding (netctl debug tables, the benches and chaos read `value` as JSON), other
 * non-UTF-8 values as base64; POST takes `value` (text) or `valueBase64` (bytes).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router, type ApiRequest } from '../../../../src/adapters/api/server.js';
import { registerGossipRoutes } from '../../../../src/agent/gossip/routes.js';
import { ENDPOINT_TABLE, encodeEndpoint, type EndpointRecord } from '../../../../src/core/endpoints.js';
import type { GossipNode } from '../../../../src/core/gossip/index.js';
import { MeshError } from '../../../../src/core/errors.js';

const rec: EndpointRecord = {
  v: 1, taskId: 't1', taskName: 'web.1', serviceId: 's1', serviceName: 'web', network: 'net1', networkName: 'app',
  ip: '10.77.0.5', mac: '02:42:0a:4d:00:05', node: 'n2', nodeIp: '10.99.0.2', vip: '10.77.0.2', endpointMode: 'vip', aliases: [], ports: [], state: 'running',
};

function rig() {
  const entries: Array<{ table: string; key: string; value: Uint8Array; owner: string; ltime: number }> = [];
  const core = {
    networks: () => ['net1'],
    networkNodes: () => ['n1', 'n2'],
    tableEntries: () => entries,
    tableSet: (_n: string, table: string, key: string, value: Uint8Array) => void entries.push({ table, key, value, owner: 'n1', ltime: 1 }),
  } as unknown as GossipNode;
  const router = new Router();
  registerGossipRoutes(router, { core, now: () => 0, pump: () => {} });
  const call = async (method: string, body?: unknown) => {
    const m = router.match(method, '/v1/gossip/tables')!;
    const req: ApiRequest = { method, path: '/v1/gossip/tables', params: m.params, query: new URLSearchParams(), body };
    return (await m.handler(req)) as { json: unknown };
  };
  return { entries, call };
}

test('gossip tables API: endpoint records read back as their JSON whichever encoding; other binary values as base64', async () => {
  const { call } = rig();
  await call('POST', { network: 'net1', table: ENDPOINT_TABLE, key: 't1', valueBase64: Buffer.from(encodeEndpoint(rec, 'compact')).toString('base64') });
  await call('POST', { network: 'net1', table: ENDPOINT_TABLE, key: 't2', value: JSON.stringify({ ...rec, taskId: 't2' }) });
  await call('POST', { network: 'net1', table: 'other', key: 'b', valueBase64: Buffer.from([0xff, 0]).toString('base64') });
  const [dump] = (await call('GET')).json as Array<{ entries: Array<Record<string, unknown>> }>;
  const byKey = new Map(dump!.entries.map((e) => [e.key, e]));
  const t1 = byKey.get('t1')!;
  assert.deepEqual(JSON.parse(t1.value as string), rec);
  assert.equal(t1.encoding, 'compact');
  assert.equal(t1.bytes, encodeEndpoint(rec, 'compact').length);
  assert.deepEqual(JSON.parse(byKey.get('t2')!.value as string), { ...rec, taskId: 't2' });
  assert.equal(byKey.get('t2')!.encoding, undefined, 'a JSON record is shown as stored');
  assert.deepEqual({ value: byKey.get('b')!.value, valueBase64: byKey.get('b')!.valueBase64 }, { value: '', valueBase64: '/wA=' });
});

test('gossip tables API: a write needs exactly one of value / valueBase64, within the size limit', async () => {
  const { call, entries } = rig();
  const bad = async (body: Record<string, unknown>, re: RegExp) => assert.rejects(call('POST', { network: 'net1', table: 'x', key: 'k', ...body }), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message));
  await bad({}, /one of them/);
  await bad({ value: 'a', valueBase64: 'YQ==' }, /one of them/);
  await bad({ valueBase64: 'not base64!' }, /one of them/);
  await bad({ valueBase64: Buffer.alloc(70_000).toString('base64') }, /at most/);
  assert.equal(entries.length, 0);
});
