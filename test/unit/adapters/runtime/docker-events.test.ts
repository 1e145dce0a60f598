/** DockerEvents against a fake engine: delivery, reconnect with `since` after a break, dedupe of the replay, close. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { DockerEvents } from '../../../../src/adapters/runtime/docker-events.js';

class FakeEngine {
  readonly calls: Array<{ since?: number; filters: unknown }> = [];
  readonly streams: PassThrough[] = [];
  fail = 0;
  async getEvents(o: { since?: number; filters: unknown }): Promise<PassThrough> {
    this.calls.push(o);
    if (this.fail > 0) {
      this.fail--;
      throw Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' });
    }
    const s = new PassThrough();
    this.streams.push(s);
    return s;
  }
}

const die = (task: string, id: string, t: number, role = 'app'): string => JSON.stringify({
  Type: 'container', Action: 'die', Actor: { ID: id, Attributes: { 'meshd.prefix': 'p-', 'meshd.task': task, 'meshd.role': role, exitCode: '137' } }, time: t, timeNano: t * 1e9,
}) + '\n';

const until = async (what: string, fn: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('DockerEvents', () => {
  test('filters by prefix, delivers die events, reconnects with since after a break, drops replayed duplicates', async () => {
    const eng = new FakeEngine();
    const ev = new DockerEvents(eng as unknown as Docker, 'p-');
    const got: string[] = [];
    ev.subscribe((e) => got.push(`${e.taskId}/${e.role}/${e.exitCode}`));
    await ev.opened();
    assert.deepEqual(eng.calls[0], { filters: { type: ['container'], event: ['die', 'health_status'], label: ['meshd.prefix=p-'] } });
    const a = die('t1', 'c1', 1700000000);
    eng.streams[0]!.write(a.slice(0, 20));
    eng.streams[0]!.write(a.slice(20) + die('t1', 's1', 1700000001, 'sandbox'));
    await until('first event', () => got.length === 2);
    eng.fail = 1; // the engine restarts: first reconnect refused, the second works
    eng.streams[0]!.end();
    await until('reconnected', () => eng.streams.length === 2, 2000);
    assert.equal(eng.calls.length, 3);
    assert.equal(eng.calls[2]!.since, 1700000001, 'replays from the last event seen');
    eng.streams[1]!.write(die('t1', 's1', 1700000001, 'sandbox') + die('t2', 'c2', 1700000005));
    await until('after reconnect', () => got.length === 3);
    assert.deepEqual(got, ['t1/app/137', 't1/sandbox/137', 't2/app/137']);
    assert.equal(ev.connects, 2);
    ev.close();
    assert.equal(eng.streams[1]!.destroyed, true);
  });

  test('close() during a back-off clears the timer (no reconnect afterwards)', async () => {
    const eng = new FakeEngine();
    eng.fail = 100;
    const ev = new DockerEvents(eng as unknown as Docker, 'p-');
    ev.subscribe(() => undefined);
    await until('first attempt', () => eng.calls.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    ev.close();
    const n = eng.calls.length;
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(eng.calls.length, n);
  });
});
