import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../../src/adapters/api/client.js';
import { decodeEndpoint, encodeEndpoint, type EndpointRecord } from '../../../src/core/endpoints.js';
import { churnRecord, errorKind, startEndpointChurn } from '../../../bench/lib/endpoint-churn.js';
import { MeshError } from '../../../src/core/errors.js';

const template: EndpointRecord = {
  v: 1, taskId: 't1', taskName: 'churn.1', serviceId: 's1', serviceName: 'churn', network: 'net1', networkName: 'app',
  ip: '10.77.0.5', mac: '02:42:0a:4d:00:05', node: 'n3', nodeIp: '10.99.0.3', vip: '10.77.0.2', endpointMode: 'vip', aliases: ['x'], ports: [], state: 'running',
};

test('churnRecord: a valid endpoint record of the template\'s service, on a host no agent is, with its own address', () => {
  const r = churnRecord(template, 7, '10.77.200.9', { node: 'n2', nodeIp: '10.99.0.2' });
  const d = decodeEndpoint(encodeEndpoint(r));
  assert.ok(d.ok);
  assert.equal(r.serviceId, 's1');
  assert.equal(r.vip, '10.77.0.2');
  assert.equal(r.taskId, 'bench-churn-7');
  assert.equal(r.node, 'n2-churn'); // not the writer's name: its LB would take it for a local task
  assert.equal(r.nodeIp, '10.99.0.2');
  assert.equal(r.ip, '10.77.200.9');
  assert.notEqual(r.mac, template.mac);
  assert.deepEqual(r.aliases, []);
});

test('startEndpointChurn: adds up to the pool, then removes the oldest; reports the rate reached and cleans up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'churn-'));
  const sock = join(dir, 'api.sock');
  const live = new Set<string>();
  let writes = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const b = JSON.parse(body) as { network: string; table: string; key: string; delete?: boolean; value?: string };
      assert.equal(b.network, 'net1');
      assert.equal(b.table, 'endpoints');
      writes++;
      if (b.delete) live.delete(b.key);
      else live.add(b.key);
      res.setHeader('content-type', 'application/json');
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const client = new ApiClient({ socketPath: sock });
    const churn = startEndpointChurn({ writers: [{ node: 'n2', nodeIp: '10.99.0.2', client }], template, ratePerS: 200, ipOf: (i) => `10.77.200.${i + 2}`, pool: 5, inflight: 2 });
    // wait for writes past the pool (so removes happened), however slow the machine is
    let maxLive = 0;
    const deadline = Date.now() + 20_000;
    while (writes < 12) {
      maxLive = Math.max(maxLive, live.size);
      if (Date.now() > deadline) assert.fail(`churn wrote ${writes} records in 20 s (live ${live.size}), waited for 12`);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(maxLive <= 5 + 2, `at most pool + in-flight (2) live, got ${maxLive}`);
    const rep = await churn.stop();
    assert.equal(rep.inflight, 2);
    assert.deepEqual(rep.errorKinds, {});
    assert.ok(rep.writeMs.p50 !== null && rep.writeMs.p99 !== null && rep.writeMs.max !== null && rep.writeMs.p50 <= rep.writeMs.max, JSON.stringify(rep.writeMs));
    // the default cap covers half a second of the rate (a loaded machine's round trips), not 2 per writer
    const dflt = startEndpointChurn({ writers: [{ node: 'n2', nodeIp: '10.99.0.2', client }, { node: 'n3', nodeIp: '10.99.0.3', client }], template, ratePerS: 100, ipOf: (i) => `10.77.201.${(i % 250) + 2}`, pool: 5 });
    const rep2 = await dflt.stop();
    assert.equal(rep2.inflight, 50);
    assert.equal(rep2.errors, 0, rep2.firstErrors.join(' | '));
    assert.equal(rep.errors, 0, rep.firstErrors.join(' | '));
    assert.ok(rep.changes >= 12, `changes written, got ${rep.changes}`);
    assert.ok(rep.ratePerS > 0 && rep.ratePerS <= 200 * 1.2, `rate ${rep.ratePerS}`);
    assert.equal(live.size, 0, 'stop removes every record still live');
    assert.ok(writes >= rep.changes + rep2.changes);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('errorKind: a failed write is counted by its code and, for an unreachable agent, its cause', () => {
  assert.equal(errorKind(new MeshError('MESHD_AGENT_UNREACHABLE', 'cannot reach the agent at /run/x.sock: ECONNRESET')), 'MESHD_AGENT_UNREACHABLE (ECONNRESET)');
  assert.equal(errorKind(new MeshError('MESHD_AGENT_UNREACHABLE', 'agent at /run/x.sock did not answer in time')), 'MESHD_AGENT_UNREACHABLE (timeout)');
  assert.equal(errorKind(new MeshError('MESHD_NOT_FOUND', 'no entry a/b/c')), 'MESHD_NOT_FOUND');
  assert.equal(errorKind(new Error('boom')), 'error');
});
