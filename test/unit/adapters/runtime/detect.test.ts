/**
 * Runtime detection against a stand-in Docker Engine on a unix socket (a temp dir, nothing
 * else touched): `GET /version` answered → docker with the engine's versions; no socket, an
 * error status, garbage or silence → netns only, with the reason.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectRuntimes } from '../../../../src/adapters/runtime/detect.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-detect-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function engine(path: string, answer: (url: string) => { status: number; body: string } | null): Promise<Server> {
  const s = createServer((req, res) => {
    const a = answer(req.url ?? '');
    if (!a) return; // never answers
    res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body);
  });
  await new Promise<void>((r) => s.listen(path, r));
  return s;
}
const close = (s: Server) => new Promise<void>((r) => {
  s.closeAllConnections();
  s.close(() => r());
});

test('no socket → netns only; an engine started later is picked up on the next detection', async () => {
  const path = join(dir, 'late.sock');
  const before = await detectRuntimes({ socketPath: path });
  assert.deepEqual(before.description, { runtimes: ['netns'] });
  assert.equal(before.dockerProblem, `docker engine at ${path}: no socket`);
  const s = await engine(path, (url) => (url === '/version' ? { status: 200, body: JSON.stringify({ Version: '20.10.24+dfsg1', ApiVersion: '1.41', MinAPIVersion: '1.12' }) } : { status: 404, body: '{}' }));
  try {
    const now = await detectRuntimes({ socketPath: path });
    assert.deepEqual(now, { description: { runtimes: ['netns', 'docker'], engine: { version: '20.10.24+dfsg1', apiVersion: '1.41' } } });
  } finally {
    await close(s);
  }
});

test('an engine that errs, answers garbage or stays silent is no docker runtime', async () => {
  const cases: Array<[string, ((url: string) => { status: number; body: string } | null), RegExp]> = [
    ['500', () => ({ status: 500, body: '{"message":"boom"}' }), /GET \/version answered 500/],
    ['not json', () => ({ status: 200, body: '<html>' }), /not JSON/],
    ['no versions', () => ({ status: 200, body: '{"Version":"1"}' }), /no Version\/ApiVersion/],
    ['silent', () => null, /no answer within 150 ms/],
  ];
  for (const [name, answer, why] of cases) {
    const path = join(dir, `${name.replace(/ /g, '-')}.sock`);
    const s = await engine(path, answer);
    try {
      const d = await detectRuntimes({ socketPath: path, timeoutMs: 150 });
      assert.deepEqual(d.description, { runtimes: ['netns'] }, name);
      assert.match(d.dockerProblem ?? '', why, name);
    } finally {
      await close(s);
    }
  }
});
