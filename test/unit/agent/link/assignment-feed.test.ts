/**
 * The agent's assignment feed (src/agent/link/assignment-feed.ts) against a scripted manager on a
 * ManualClock: the next request goes out at once after an answer and carries the token; an unchanged
 * list is not handed to the worker twice; a failure retries after retryMs; a manager without the watch
 * route switches the feed to poll mode and is asked again after recheckMs; stop cancels the request in
 * flight and nothing is applied after it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { AssignmentFeed } from '../../../../src/agent/link/assignment-feed.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { MeshError } from '../../../../src/core/errors.js';
import type { CallOptions } from '../../../../src/manager/client.js';

interface Req { path: string; opts: CallOptions | undefined; resolve: (v: unknown) => void; reject: (e: unknown) => void }

/** A manager whose answers the test gives one request at a time. */
function scripted() {
  const reqs: Req[] = [];
  const pool = {
    call: <T>(_m: string, path: string, _b?: unknown, opts?: CallOptions) => new Promise<T>((resolve, reject) => {
      const r: Req = { path, opts, resolve: resolve as (v: unknown) => void, reject };
      opts?.signal?.addEventListener('abort', () => reject(new MeshError('MESHD_CANCELLED', 'cancelled')));
      reqs.push(r);
    }),
  };
  return { pool, reqs };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

function rig(opts: { retryMs?: number; recheckMs?: number } = {}) {
  const clock = new ManualClock(1_000);
  const applied: unknown[] = [];
  const { pool, reqs } = scripted();
  const feed = new AssignmentFeed(pool, { clock, log: pino({ level: 'silent' }), worker: { setAssignments: (l) => applied.push(l) }, waitMs: 10_000, ...opts });
  return { clock, applied, reqs, feed };
}

describe('assignment feed (ManualClock, scripted manager)', () => {
  test('asks again at once with the token; an unchanged list is applied once', async () => {
    const { applied, reqs, feed, clock } = rig();
    feed.start();
    clock.advance(0);
    await flush();
    assert.equal(reqs.length, 1);
    assert.equal(reqs[0]!.path, '/v1/dispatcher/assignments/watch?waitMs=10000');
    assert.equal(reqs[0]!.opts?.timeoutMs, 25_000, 'the request may idle for the wait plus room');
    reqs[0]!.resolve({ token: 'tokA', assignments: [{ a: 1 }] });
    await flush();
    clock.advance(0);
    await flush();
    assert.deepEqual(applied, [[{ a: 1 }]]);
    assert.equal(reqs.length, 2);
    assert.equal(reqs[1]!.path, '/v1/dispatcher/assignments/watch?waitMs=10000&known=tokA');
    reqs[1]!.resolve({ token: 'tokA', assignments: [{ a: 1 }] }); // the wait ran out: same list
    await flush();
    clock.advance(0);
    await flush();
    assert.equal(applied.length, 1, 'same list not applied twice');
    reqs[2]!.resolve({ token: 'tokB', assignments: [{ a: 2 }] });
    await flush();
    assert.deepEqual(applied, [[{ a: 1 }], [{ a: 2 }]]);
    assert.deepEqual(feed.status(), { mode: 'watch', token: 'tokB', lastError: null, answers: 3, changed: 2 });
    await feed.stop();
  });

  test('a failure retries after retryMs; a malformed answer is a failure, not a list', async () => {
    const { applied, reqs, feed, clock } = rig({ retryMs: 1000 });
    feed.start();
    clock.advance(0);
    await flush();
    reqs[0]!.reject(new MeshError('MESHD_MANAGER_UNREACHABLE', 'down'));
    await flush();
    clock.advance(999);
    await flush();
    assert.equal(reqs.length, 1, 'retried before retryMs');
    clock.advance(1);
    await flush();
    assert.equal(reqs.length, 2);
    reqs[1]!.resolve({ assignments: [] }); // no token
    await flush();
    assert.deepEqual(applied, []);
    assert.match(String(feed.status().lastError), /without a token/);
    clock.advance(1000);
    await flush();
    assert.equal(reqs.length, 3);
    await feed.stop();
  });

  test('a manager without the watch route: poll mode, asked again after recheckMs; apply() serves the poll', async () => {
    const { applied, reqs, feed, clock } = rig({ recheckMs: 60_000 });
    feed.start();
    clock.advance(0);
    await flush();
    reqs[0]!.reject(new MeshError('MESHD_UNKNOWN_ROUTE', 'no route GET /v1/dispatcher/assignments/watch'));
    await flush();
    assert.equal(feed.mode, 'poll');
    feed.apply([{ p: 1 }]);
    feed.apply([{ p: 1 }]);
    assert.deepEqual(applied, [[{ p: 1 }]]);
    clock.advance(59_999);
    await flush();
    assert.equal(reqs.length, 1);
    clock.advance(1);
    await flush();
    assert.equal(reqs.length, 2);
    reqs[1]!.resolve({ token: 't', assignments: [{ p: 1 }] });
    await flush();
    assert.equal(feed.mode, 'watch', 'the upgraded manager pushes again');
    assert.equal(applied.length, 1, 'the list the poll applied is not applied again');
    await feed.stop();
  });

  test('stop cancels the request in flight; an answer racing the stop is not applied', async () => {
    const { applied, reqs, feed, clock } = rig();
    feed.start();
    clock.advance(0);
    await flush();
    const late = reqs[0]!;
    const stopped = feed.stop();
    late.resolve({ token: 'x', assignments: [{ late: true }] }); // too late: the abort rejected it first
    await stopped;
    assert.ok(late.opts?.signal?.aborted, 'request aborted');
    assert.deepEqual(applied, []);
    clock.advance(60_000);
    await flush();
    assert.equal(reqs.length, 1, 'nothing asked after stop');
  });
});

describe('assignment feed: redirect', () => {
  test('redirect cancels the held request and asks again at once, without logging a failure', async () => {
    const { reqs, feed, clock } = rig();
    feed.start();
    clock.advance(0);
    await flush();
    feed.redirect();
    await flush();
    assert.ok(reqs[0]!.opts?.signal?.aborted);
    clock.advance(0);
    await flush();
    assert.equal(reqs.length, 2, 'asked again at once');
    assert.equal(feed.status().lastError, null);
    await feed.stop();
  });
});
