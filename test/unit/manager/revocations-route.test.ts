/**
 * GET /v1/revocations, in-process over real mTLS (MemoryStore, no agents): any node reads the
 * list the agents' peer APIs check; `node rm` puts the node in it; the removed node's own
 * certificate no longer reads it; no certificate is refused.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { MeshError } from '../../../src/core/errors.js';
import { MemoryStore } from '../../../src/adapters/store/memory.js';
import type { NodeIdentity } from '../../../src/adapters/pki/files.js';
import { Manager } from '../../../src/manager/manager.js';
import { ManagerClient } from '../../../src/manager/client.js';
import { joinCluster } from '../../../src/manager/join.js';
import { parseRevocations } from '../../../src/agent/peer/revocations.js';

const root = mkdtempSync(join(tmpdir(), 'meshd-revroute-'));
let mgr: Manager;
let addr: string;
let admin: ManagerClient;
let w2: NodeIdentity;
let w3: NodeIdentity;
const client = (id: NodeIdentity) => new ManagerClient(addr, { caPem: id.caPem, certPem: id.certPem, keyPem: id.keyPem });

before(async () => {
  mgr = await Manager.initCluster({ dataDir: join(root, 'm1'), store: new MemoryStore(), nodeName: 'm1', advertiseAddr: '127.0.0.1' });
  addr = `127.0.0.1:${(await mgr.listen('127.0.0.1', 0)).port}`;
  admin = client(mgr.identity);
  const token = await mgr.joinToken('worker');
  w2 = await joinCluster({ addr, token, nodeName: 'w2', dataDir: join(root, 'w2'), advertiseAddr: '127.0.0.1' });
  w3 = await joinCluster({ addr, token, nodeName: 'w3', dataDir: join(root, 'w3'), advertiseAddr: '127.0.0.1' });
});

after(async () => {
  await mgr?.close();
  rmSync(root, { recursive: true, force: true });
});

test('a worker reads the (empty) list; after node rm the removed node is in it and its certificate is refused', async () => {
  assert.deepEqual(await client(w2).call('GET', '/v1/revocations'), { entries: [] });
  await admin.call('DELETE', `/v1/nodes/${w3.nodeId}`);
  const answer = await client(w2).call<{ entries: Array<{ kind: string; id: string; until: number; at: number }> }>('GET', '/v1/revocations');
  assert.equal(answer.entries.length, 1, JSON.stringify(answer));
  assert.equal(answer.entries[0]!.kind, 'node');
  assert.equal(answer.entries[0]!.id, w3.nodeId);
  assert.ok(parseRevocations(answer).nodes.has(w3.nodeId), 'the agent side parses the manager\'s answer');
  await assert.rejects(client(w3).call('GET', '/v1/revocations'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_CERT_REJECTED' && e.status === 403);
});

test('without a client certificate the list is refused', async () => {
  const [host, port] = addr.split(':') as [string, string];
  const status = await new Promise<number>((resolve, reject) => {
    const req = request({ host, port: Number(port), path: '/v1/revocations', ca: [mgr.identity.caPem], checkServerIdentity: () => undefined }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 403);
});
