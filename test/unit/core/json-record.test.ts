import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFiniteNumber, jsonRecordCodec } from '../../../src/core/json-record.js';

const codec = jsonRecordCodec<{ n: number }>((o) => (isFiniteNumber(o.n) ? { n: o.n } : null));
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

test('jsonRecordCodec: round trip, and only the validated fields come back', () => {
  assert.deepEqual(codec.decode(codec.encode({ n: 3 })), { n: 3 });
  assert.deepEqual(codec.decode(bytes('{"n":4,"extra":"x"}')), { n: 4 });
});

test('jsonRecordCodec: anything else decodes to null, never throws', () => {
  const cases: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array(0)],
    ['not JSON', bytes('{n:1')],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0x7d])],
    ['null', bytes('null')],
    ['array', bytes('[1]')],
    ['number', bytes('5')],
    ['validator refuses', bytes('{"n":"1"}')],
    ['validator refuses NaN-ish', bytes('{"n":1e999}')],
  ];
  for (const [name, b] of cases) assert.equal(codec.decode(b), null, name);
});

test('jsonRecordCodec: a __proto__ key never reaches the validator', () => {
  const seen: Array<Record<string, unknown>> = [];
  const c = jsonRecordCodec<true>((o) => (seen.push(o), true));
  c.decode(bytes('{"__proto__":{"polluted":1},"a":1}'));
  assert.equal(Object.getPrototypeOf(seen[0]), Object.prototype);
  assert.equal((seen[0] as { polluted?: number }).polluted, undefined);
  assert.deepEqual(Object.keys(seen[0]!), ['a']);
});

test('isFiniteNumber: table', () => {
  for (const [v, want] of [[1, true], [0, true], [-2.5, true], [NaN, false], [Infinity, false], ['1', false], [null, false]] as const) {
    assert.equal(isFiniteNumber(v), want, String(v));
  }
});
