/** Pure parsers of the docker runtime: stdcopy framing, events lines, die events, back-off, signals. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDemuxer, JsonLines, parseDieEvent, parseHealthEvent, reconnectDelayMs, tailLines } from '../../../../src/adapters/runtime/docker-stream.js';
import { stopSignalOf } from '../../../../src/adapters/runtime/signal.js';

const frame = (type: number, text: string): Buffer => {
  const body = Buffer.from(text);
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(body.length, 4);
  return Buffer.concat([h, body]);
};

describe('FrameDemuxer', () => {
  test('splits stdout/stderr frames fed in arbitrary chunks (header and payload split)', () => {
    const all = Buffer.concat([frame(1, 'hello\n'), frame(2, 'oops\n'), frame(1, ''), frame(1, 'x'.repeat(70_000))]);
    for (const step of [1, 3, 7, 8, 9, 4096, all.length]) {
      const d = new FrameDemuxer();
      const got: Array<[string, string]> = [];
      for (let i = 0; i < all.length; i += step) for (const f of d.push(all.subarray(i, i + step))) got.push([f.stream, f.data.toString()]);
      assert.deepEqual(got, [['stdout', 'hello\n'], ['stderr', 'oops\n'], ['stdout', ''], ['stdout', 'x'.repeat(70_000)]], `step ${step}`);
      assert.equal(d.pending, 0);
    }
  });
  test('an incomplete frame stays pending', () => {
    const d = new FrameDemuxer();
    assert.deepEqual(d.push(frame(1, 'abc').subarray(0, 10)), []);
    assert.equal(d.pending, 10);
  });
});

describe('events', () => {
  const die = (attrs: Record<string, string>, extra: Record<string, unknown> = {}): unknown => ({
    Type: 'container', Action: 'die', Actor: { ID: 'c0ffee', Attributes: attrs }, time: 1700000000, timeNano: 1700000000123456789, ...extra,
  });
  test('JsonLines: split lines, partial lines wait, malformed lines reported', () => {
    const j = new JsonLines();
    assert.deepEqual(j.push('{"a":1}\n{"b"'), [{ ok: true, value: { a: 1 } }]);
    assert.deepEqual(j.push(':2}\n\nnot json\n'), [{ ok: true, value: { b: 2 } }, { ok: false, line: 'not json' }]);
  });
  test('parseHealthEvent: health_status of our application containers only', () => {
    const hs = (status: string, attrs: Record<string, string> = { 'meshd.prefix': 'p-', 'meshd.task': 't1', 'meshd.role': 'app' }) => die(attrs, { Action: `health_status: ${status}` });
    assert.deepEqual(parseHealthEvent(hs('healthy'), 'p-'), { taskId: 't1', status: 'healthy', containerId: 'c0ffee', timeNano: 1700000000123456789 });
    assert.equal(parseHealthEvent(hs('unhealthy'), 'p-')?.status, 'unhealthy');
    assert.equal(parseHealthEvent(hs('starting'), 'p-')?.status, 'starting');
    assert.equal(parseHealthEvent(hs('sick'), 'p-'), null);
    assert.equal(parseHealthEvent(hs('healthy', { 'meshd.prefix': 'other-', 'meshd.task': 't1' }), 'p-'), null);
    assert.equal(parseHealthEvent(hs('healthy', { 'meshd.prefix': 'p-', 'meshd.task': 't1', 'meshd.role': 'sandbox' }), 'p-'), null);
    assert.equal(parseHealthEvent(hs('healthy', { 'meshd.prefix': 'p-' }), 'p-'), null);
    assert.equal(parseHealthEvent(die({ 'meshd.prefix': 'p-', 'meshd.task': 't1' }), 'p-'), null, 'a die event is not a health event');
    assert.equal(parseHealthEvent(null, 'p-'), null);
  });
  test('parseDieEvent: only die events of our prefix with a task label; role and exit code', () => {
    assert.deepEqual(parseDieEvent(die({ 'meshd.prefix': 'p-', 'meshd.task': 't1', 'meshd.role': 'app', exitCode: '137' }), 'p-'),
      { taskId: 't1', role: 'app', exitCode: 137, containerId: 'c0ffee', timeNano: 1700000000123456789 });
    assert.equal(parseDieEvent(die({ 'meshd.prefix': 'p-', 'meshd.task': 't1', 'meshd.role': 'sandbox', exitCode: '0' }), 'p-')?.role, 'sandbox');
    assert.equal(parseDieEvent(die({ 'meshd.prefix': 'p-', 'meshd.task': 't1' }), 'p-')?.exitCode, null);
    assert.equal(parseDieEvent(die({ 'meshd.prefix': 'other-', 'meshd.task': 't1' }), 'p-'), null);
    assert.equal(parseDieEvent(die({ 'meshd.prefix': 'p-' }), 'p-'), null);
    assert.equal(parseDieEvent(die({ 'meshd.prefix': 'p-', 'meshd.task': 't1' }, { Action: 'start' }), 'p-'), null);
    assert.equal(parseDieEvent({ Type: 'network', Action: 'die' }, 'p-'), null);
    assert.equal(parseDieEvent(null, 'p-'), null);
    assert.equal(parseDieEvent(die({ 'meshd.prefix': 'p-', 'meshd.task': 't1' }, { timeNano: undefined }), 'p-')?.timeNano, 1700000000e9);
  });
  test('reconnect back-off: 100 ms doubling, capped at 5 s', () => {
    assert.deepEqual([1, 2, 3, 6, 7, 100].map(reconnectDelayMs), [100, 200, 400, 3200, 5000, 5000]);
  });
});

describe('stop signals and tail', () => {
  test('names with or without SIG, numbers; unknown refused', () => {
    assert.equal(stopSignalOf(undefined), 'SIGTERM');
    assert.equal(stopSignalOf('quit'), 'SIGQUIT');
    assert.equal(stopSignalOf('SIGINT'), 'SIGINT');
    assert.equal(stopSignalOf('9'), 9);
    assert.throws(() => stopSignalOf('SIGNOPE'), /unknown stop signal/);
    assert.throws(() => stopSignalOf('99'), /unknown stop signal/);
  });
  test('tailLines keeps the last n lines', () => {
    assert.equal(tailLines('a\nb\nc\n', 2), 'b\nc\n');
    assert.equal(tailLines('a\nb', 5), 'a\nb');
    assert.equal(tailLines('a\n', 0), '');
  });
});
