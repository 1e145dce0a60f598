/**
 * The agent's copy of the revocation list (src/agent/peer/revocations.ts): the manager's answer
 * parsed whole or refused, lookups by node id and serial, and the refresh back-off.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../../src/core/errors.js';
import { RevocationList } from '../../../../src/adapters/pki/revocation.js';
import {
  EMPTY_REVOKED, REVOCATION_REFRESH_MS, isRevokedIn, normalizeSerial, parseRevocations, revocationRetryMs,
} from '../../../../src/agent/peer/revocations.js';

describe('parseRevocations', () => {
  test('reads what the manager serves (RevocationList.toJSON under entries)', () => {
    const list = new RevocationList();
    list.revokeNode('abc123', 2000, 1000);
    list.revokeSerial('00AB12', 2000, 1000);
    const set = parseRevocations(JSON.parse(JSON.stringify({ entries: list.toJSON() })));
    assert.deepEqual([...set.nodes], ['abc123']);
    assert.ok(isRevokedIn(set, 'abc123', 'FFFF'), 'by node id, any serial');
    assert.ok(isRevokedIn(set, 'other', 'AB12'), 'by serial, case and leading zeros ignored');
    assert.ok(isRevokedIn(set, 'other', '0000ab12'));
    assert.ok(!isRevokedIn(set, 'other', 'ab13'));
    assert.ok(!isRevokedIn(set, 'other', ''), 'an empty serial matches nothing');
  });

  test('an empty list revokes nothing', () => {
    const set = parseRevocations({ entries: [] });
    assert.ok(!isRevokedIn(set, 'abc123', '01'));
    assert.ok(!isRevokedIn(EMPTY_REVOKED, 'abc123', '01'));
  });

  const bad: Array<[string, unknown]> = [
    ['null', null],
    ['no entries', {}],
    ['entries not an array', { entries: { kind: 'node', id: 'x' } }],
    ['unknown kind', { entries: [{ kind: 'host', id: 'x' }] }],
    ['missing id', { entries: [{ kind: 'node' }] }],
    ['empty id', { entries: [{ kind: 'node', id: '' }] }],
    ['null entry after a good one', { entries: [{ kind: 'node', id: 'x' }, null] }],
  ];
  for (const [what, v] of bad) {
    test(`malformed answer refused whole: ${what}`, () => {
      assert.throws(() => parseRevocations(v), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_INTERNAL' && e.details?.reason === 'malformed-revocations');
    });
  }
});

describe('refresh timing', () => {
  test('the period is 30 s; failures back off 1, 2, 4 … s up to the period', () => {
    assert.equal(REVOCATION_REFRESH_MS, 30_000);
    const table: Array<[number, number]> = [[0, 30_000], [1, 1000], [2, 2000], [3, 4000], [5, 16_000], [6, 30_000], [100, 30_000]];
    for (const [failures, ms] of table) assert.equal(revocationRetryMs(failures, 30_000), ms, `failures=${failures}`);
    assert.equal(revocationRetryMs(3, 2500), 2500, 'never beyond a short period');
  });

  test('serials normalise to lower case without leading zeros', () => {
    assert.equal(normalizeSerial('00AB'), 'ab');
    assert.equal(normalizeSerial('0'), '0');
    assert.equal(normalizeSerial('000'), '0');
  });
});
