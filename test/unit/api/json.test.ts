import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseJsonBody } from '../../../src/adapters/api/json.js';
import { listenUnix, Router } from '../../../src/adapters/api/server.js';
import { ApiClient } from '../../../src/adapters/api/client.js';
import { MeshError } from '../../../src/core/errors.js';

test('JSON bodies: bad JSON and prototype keys are 4xx errors', () => {
  assert.deepEqual(parseJsonBody('{"a":1}'), { a: 1 });
  assert.throws(() => parseJsonBody('{'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_JSON');
  assert.throws(() => parseJsonBody('{"__proto__":{"x":1}}'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
  assert.throws(() => parseJsonBody('{"a":{"constructor":{"prototype":1}}}'), (e: unknown) => e instanceof MeshError && e.status === 400);
});

test('API server over a unix socket: routes, errors with codes, body limit, never 5xx for bad input', async () => {
  void createServer;
  const dir = mkdtempSync(join(tmpdir(), 'meshd-api-'));
  const sock = join(dir, 'a.sock');
  const router = new Router()
    .add('GET', '/v1/echo/:name', (r) => ({ json: { name: r.params.name } }))
    .add('POST', '/v1/body', (r) => ({ json: { got: r.body } }))
    .add('GET', '/v1/missing', () => {
      throw new MeshError('MESHD_NOT_FOUND', 'nothing here');
    });
  const server = await listenUnix(router, sock);
  try {
    const c = new ApiClient({ socketPath: sock });
    assert.deepEqual(await c.call('GET', '/v1/echo/x%20y'), { name: 'x y' });
    assert.deepEqual(await c.call('POST', '/v1/body', { a: [1, 2] }), { got: { a: [1, 2] } });
    await assert.rejects(c.call('GET', '/v1/missing'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_NOT_FOUND');
    await assert.rejects(c.call('GET', '/v1/echo/%E0%A4%A'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
    await assert.rejects(c.call('GET', '/nope'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_UNKNOWN_ROUTE');
    const huge = await c.raw('POST', '/v1/body', { x: 'a'.repeat(2 << 20) }).catch((e: Error) => ({ status: -1, body: e.message }));
    assert.ok(huge.status === 400 || huge.status === -1, `huge body → 400 or reset, got ${huge.status}`);
    const badJson = await new Promise<number>((resolve) => {
      import('node:http').then(({ request }) => {
        const req = request({ socketPath: sock, path: '/v1/body', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.end('{not json');
      });
    });
    assert.equal(badJson, 400);
    const dead = new ApiClient({ socketPath: join(dir, 'none.sock') });
    await assert.rejects(dead.call('GET', '/v1/info'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_AGENT_UNREACHABLE');
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
