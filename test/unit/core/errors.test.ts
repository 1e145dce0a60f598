import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, ERROR_KINDS, MeshError, fromErrorJSON, toMeshError } from '../../../src/core/errors.js';

test('every code maps to a kind with a 4xx/5xx status and a non-zero exit code', () => {
  for (const [code, def] of Object.entries(ERROR_CODES)) {
    const k = ERROR_KINDS[def.kind];
    assert.ok(k, code);
    assert.ok(k.status >= 400 && k.status < 600, code);
    assert.ok(k.exitCode > 0, code);
    if (def.kind !== 'Internal' && def.kind !== 'Unavailable') assert.ok(k.status < 500, `${code} must be 4xx`);
  }
});

test('MeshError round-trips through JSON with its code', () => {
  const e = new MeshError('MESHD_LAB_NOT_FOUND', 'no lab x', { lab: 'x' });
  assert.equal(e.status, 404);
  assert.equal(e.exitCode, 3);
  const back = fromErrorJSON(JSON.parse(JSON.stringify(e)));
  assert.equal(back.code, 'MESHD_LAB_NOT_FOUND');
  assert.equal(back.message, 'no lab x');
  assert.deepEqual(back.details, { lab: 'x' });
});

test('unknown errors become Internal; unknown codes in responses too', () => {
  assert.equal(toMeshError(new Error('boom')).code, 'MESHD_INTERNAL');
  assert.equal(toMeshError('x').kind, 'Internal');
  assert.equal(fromErrorJSON({ code: 'NOPE' }).code, 'MESHD_INTERNAL');
  assert.equal(fromErrorJSON(null).code, 'MESHD_INTERNAL');
});
