/**
 * Kept-alive control-socket connections (the ~2 ECONNRESET in 3,000 writes the convergence bench's
 * churn saw at load 30–40): the agent's server closed an idle connection (Node's default 5 s) just as a
 * CPU-starved client reused it from its pool (idle timeout 4–5 s). The server now keeps idle
 * connections far longer than any client pool does, and ApiClient retries once, on a connection of its
 * own, a request that failed on a reused socket before any answer. The race is made deterministic here
 * by a server that closes a kept-alive connection the moment the next request arrives on it — what the
 * agent's keep-alive timer does when it fires as the request comes in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, globalAgent, request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient } from '../../../src/adapters/api/client.js';
import { API_KEEP_ALIVE_MS, listenUnix, Router } from '../../../src/adapters/api/server.js';
import { MeshError } from '../../../src/core/errors.js';

const OK = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n{"ok":true}';

/**
 * A unix-socket HTTP server scripted per connection: `onRequest(conn, n)` gets the connection's number
 * and the request's number on it (both from 1) and answers 'ok' or 'close' (destroys the connection
 * without an answer). A request starts a chunk (small bodies, one request at a time); a chunk that does
 * not start with a request line is the rest of the last one.
 */
async function scripted(onRequest: (conn: number, n: number) => 'ok' | 'close') {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-ka-'));
  const sock = join(dir, 'api.sock');
  const sockets = new Set<Socket>();
  const seen: string[] = [];
  let conns = 0;
  const server = createServer((s) => {
    const conn = ++conns;
    let n = 0;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (chunk: Buffer) => {
      if (!/^[A-Z]+ \//.test(chunk.toString('latin1', 0, 16))) return; // the rest of a request already counted
      n++;
      seen.push(`${conn}.${n} ${chunk.toString('utf8').split('\r\n')[0]}`);
      if (onRequest(conn, n) === 'close') s.destroy();
      else s.write(OK);
    });
  });
  await new Promise<void>((r) => server.listen(sock, r));
  return {
    sock,
    seen,
    conns: () => conns,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('control server: announces and keeps idle connections far beyond a client pool\'s idle timeout', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-ka-'));
  const sock = join(dir, 'api.sock');
  const server = await listenUnix(new Router().add('GET', '/v1/x', () => ({ json: { ok: true } })), sock);
  try {
    assert.equal(server.keepAliveTimeout, API_KEEP_ALIVE_MS);
    const pool = new Agent({ keepAlive: true });
    const header = await new Promise<string | undefined>((resolve, reject) => {
      const req = request({ socketPath: sock, path: '/v1/x', agent: pool }, (res) => {
        res.resume();
        res.on('end', () => resolve(String(res.headers['keep-alive'])));
      });
      req.on('error', reject);
      req.end();
    });
    pool.destroy();
    assert.equal(header, `timeout=${API_KEEP_ALIVE_MS / 1000}`);
    // Node's pool drops an idle socket after min(its timeout, announced − 1 s): the agent's close must
    // come tens of seconds later, not at the same instant (Node's default server: 5 s = the pool's 5 s).
    const poolIdleMs = Number((globalAgent as unknown as { options: { timeout?: number } }).options.timeout ?? 5000);
    assert.ok(API_KEEP_ALIVE_MS - poolIdleMs >= 50_000, `server ${API_KEEP_ALIVE_MS} ms vs pool ${poolIdleMs} ms`);
  } finally {
    server.close();
    server.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('ApiClient: a request the agent drops on a reused kept-alive connection is sent once more, on a new one', async () => {
  // connection 1: first request answered (kept alive), the second arrives as the server closes it
  const s = await scripted((conn, n) => (conn === 1 && n === 2 ? 'close' : 'ok'));
  try {
    const c = new ApiClient({ socketPath: s.sock });
    assert.deepEqual(await c.call('POST', '/v1/gossip/tables', { key: 'a' }), { ok: true });
    assert.deepEqual(await c.call('POST', '/v1/gossip/tables', { key: 'b' }), { ok: true });
    assert.equal(s.conns(), 2, `a new connection for the retry: ${s.seen.join(' | ')}`);
    assert.deepEqual(s.seen.map((x) => x.split(' ')[0]), ['1.1', '1.2', '2.1']);
  } finally {
    s.close();
  }
});

test('ApiClient: the retry happens once; a fresh connection reset is the caller\'s error (MESHD_AGENT_UNREACHABLE), not retried', async () => {
  // every second request on a connection, and every request on a later connection, is dropped
  const s = await scripted((conn, n) => (conn === 1 && n === 1 ? 'ok' : 'close'));
  try {
    const c = new ApiClient({ socketPath: s.sock });
    await c.call('GET', '/v1/health');
    await assert.rejects(c.call('POST', '/v1/gossip/tables', { key: 'b' }), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_AGENT_UNREACHABLE' && /ECONNRESET/.test(e.message));
    assert.equal(s.conns(), 2, `one retry on one new connection: ${s.seen.join(' | ')}`);
    assert.equal(s.seen.length, 3);
  } finally {
    s.close();
  }
});
