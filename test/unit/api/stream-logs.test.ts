/**
 * Streamed task logs end to end without a kernel: the agent's logs route (task-logs.ts) on a
 * real unix-socket server with a scripted runtime, read by `netctl service logs`' merger
 * (streamLogs): lines of two tasks prefixed and merged, --tail and bad query values, a follow
 * stream that delivers a line written after it started and stops its source when the reader
 * leaves, a stream broken after its first byte (trailer), and a node that cannot be reached.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ApiClient } from '../../../src/adapters/api/client.js';
import { listenUnix, Router } from '../../../src/adapters/api/server.js';
import { tailLines } from '../../../src/adapters/runtime/docker-stream.js';
import type { LogOptions, Runtime } from '../../../src/adapters/runtime/types.js';
import { TaskLogStreams } from '../../../src/agent/worker/task-logs.js';
import { streamLogs } from '../../../src/cli/logs-commands.js';
import type { LogTask } from '../../../src/cli/logs-lines.js';
import { MeshError } from '../../../src/core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-logs-'));
const sock = join(dir, 'agent.sock');
let server: Server;
const follows = new Map<string, PassThrough>();
const calls: Array<{ id: string; o: LogOptions }> = [];
const TEXT: Record<string, string> = { aaaa1111: 'a one\na two\na three\n', bbbb2222: 'b one\nb two' };

const runtime = {
  kind: 'docker',
  async logs(id: string, o: LogOptions = {}) {
    calls.push({ id, o });
    if (id === 'broken00') {
      const s = new PassThrough();
      s.write('partial line\n');
      setTimeout(() => s.destroy(new MeshError('MESHD_INTERNAL', 'engine went away')), 20);
      return s;
    }
    const text = TEXT[id];
    if (text === undefined) throw new MeshError('MESHD_NOT_FOUND', `no such container for task ${id}`);
    const body = o.tail !== undefined ? tailLines(text, o.tail) : text;
    if (!o.follow) return Readable.from([body]);
    const s = new PassThrough();
    s.write(body);
    follows.set(id, s);
    return s;
  },
} as unknown as Runtime;

const task = (id: string, slot: number, node = 'n1'): LogTask => ({ id, name: `web.${slot}.${id}`, node, desiredState: 'running', state: 'running', runtime: 'docker' });
const never = new Promise<void>(() => undefined);

function collect(): { out: string[]; err: string[]; io: { out: (s: string) => void; err: (s: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s) => out.push(s), err: (s) => err.push(s) } };
}

before(async () => {
  const streams = new TaskLogStreams();
  const router = new Router();
  router.add('GET', '/v1/info', () => ({ json: { node: 'n1' } }));
  router.add('GET', '/v1/tasks/:task/logs', (r) => streams.handle(r, (ref) => ({ id: ref, name: `web.x.${ref}`, runtime })));
  // With -H, netctl asks every node through this agent's peer routes (src/agent/peer): n1 is this
  // agent itself, n2 cannot be reached.
  router.add('GET', '/v1/peers/n1/v1/info', () => ({ json: { node: 'n1' } }));
  router.add('GET', '/v1/peers/n1/v1/tasks/:task/logs', (r) => streams.handle(r, (ref) => ({ id: ref, name: `web.x.${ref}`, runtime })));
  router.add('GET', '/v1/peers/n2/v1/info', () => {
    throw new MeshError('MESHD_PEER_UNREACHABLE', 'cannot reach node n2 at 10.0.0.2:2378: ECONNREFUSED');
  });
  server = await listenUnix(router, sock);
});
after(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('two tasks: every line prefixed with its task, an unterminated last line kept; --tail per task', async () => {
  const c = collect();
  const failed = await streamLogs({ host: `unix://${sock}` }, [task('aaaa1111', 1), task('bbbb2222', 2)], { follow: false, timestamps: false }, c.io, never);
  assert.deepEqual(failed, []);
  const lines = c.out.join('').split('\n').filter(Boolean).sort();
  assert.deepEqual(lines, [
    'web.1.aaaa1111@n1 | a one', 'web.1.aaaa1111@n1 | a three', 'web.1.aaaa1111@n1 | a two',
    'web.2.bbbb2222@n1 | b one', 'web.2.bbbb2222@n1 | b two',
  ]);
  const t = collect();
  await streamLogs({ host: `unix://${sock}` }, [task('aaaa1111', 1), task('bbbb2222', 2)], { follow: false, tail: 1, timestamps: false }, t.io, never);
  assert.deepEqual(t.out.join('').split('\n').filter(Boolean).sort(), ['web.1.aaaa1111@n1 | a three', 'web.2.bbbb2222@n1 | b two']);
});

test('bad query values are 400s with the field named; an unknown task is the agent\'s 404', async () => {
  const c = new ApiClient({ socketPath: sock });
  for (const q of ['tail=-1', 'tail=NaN', 'tail=1.5', 'follow=yes']) {
    await assert.rejects(c.stream(`/v1/tasks/aaaa1111/logs?${q}`), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && /^(tail|follow) must be/.test(e.message), q);
  }
  await assert.rejects(c.stream('/v1/tasks/nosuch00/logs'), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_NOT_FOUND');
});

test('follow: a line written after the start arrives; stopping closes the source; a node the agent cannot reach is one line', async () => {
  const c = collect();
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const run = streamLogs({ host: `unix://${sock}` }, [task('aaaa1111', 1), task('cccc3333', 3, 'n2')], { follow: true, tail: 0, timestamps: false }, c.io, stopped);
  for (let i = 0; i < 100 && !follows.get('aaaa1111'); i++) await new Promise((r) => setTimeout(r, 10));
  const src = follows.get('aaaa1111')!;
  src.write('new line\n');
  for (let i = 0; i < 100 && !c.out.join('').includes('new line'); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(c.out.join(''), 'web.1.aaaa1111@n1 | new line\n');
  stop();
  const failed = await run;
  assert.equal(failed.length, 1, 'the task on n2');
  assert.equal(c.err.length, 1, c.err.join(''));
  assert.match(c.err[0]!, /^netctl: cannot read logs on node n2 \(web\.3\.cccc3333\): cannot reach node n2 at 10\.0\.0\.2:2378: ECONNREFUSED/);
  for (let i = 0; i < 100 && !src.destroyed; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(src.destroyed, 'the agent destroyed the source when the reader left');
  assert.deepEqual(calls.find((x) => x.id === 'aaaa1111' && x.o.follow)?.o, { follow: true, timestamps: false, tail: 0 });
});

test('a stream broken after its first byte: its lines kept, the error (trailer) reported on one line', async () => {
  const c = collect();
  const failed = await streamLogs({ host: `unix://${sock}` }, [task('broken00', 1)], { follow: true, timestamps: false }, c.io, never);
  assert.equal(c.out.join(''), 'web.1.broken00@n1 | partial line\n');
  assert.equal(failed.length, 1);
  assert.equal(c.err.join(''), 'netctl: web.1.broken00@n1: log stream broke: engine went away\n');
});
