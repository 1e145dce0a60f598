import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import {
  formatJoinToken, grantedRole, newTokenSecrets, parseJoinToken, parseTokenSecrets, roleForToken, rotateSecret, secretFromBytes,
} from '../../../src/core/tokens/tokens.js';

const D = 'ab'.repeat(32);
const S = '0123456789abcdef0123456789abcdef';
const bytes = (v: number): Uint8Array => new Uint8Array(16).fill(v);
const eq = (a: string, b: string): boolean => a === b;

function bad(code: string, reason?: string) {
  return (e: unknown): boolean => e instanceof MeshError && e.code === code && (reason === undefined || e.details?.reason === reason);
}

describe('parseJoinToken', () => {
  test('a well-formed token parses; surrounding whitespace is ignored', () => {
    assert.deepEqual(parseJoinToken(`MESHTKN-1-${D}-${S}`), { version: 1, caDigest: D, secret: S });
    assert.deepEqual(parseJoinToken(`  MESHTKN-1-${D}-${S}\n`), { version: 1, caDigest: D, secret: S });
  });
  const table: [string, unknown, string][] = [
    ['not a string', 42, 'type'],
    ['empty', '', 'shape'],
    ['too many parts', `MESHTKN-1-${D}-${S}-x`, 'shape'],
    ['too few parts', `MESHTKN-1-${D}`, 'shape'],
    ['huge', 'x'.repeat(1000), 'shape'],
    ['swarm prefix', `SWMTKN-1-${D}-${S}`, 'prefix'],
    ['lowercase prefix', `meshtkn-1-${D}-${S}`, 'prefix'],
    ['version 2', `MESHTKN-2-${D}-${S}`, 'version'],
    ['version 0', `MESHTKN-0-${D}-${S}`, 'version'],
    ['version not a number', `MESHTKN-v1-${D}-${S}`, 'version'],
    ['short digest', `MESHTKN-1-${D.slice(2)}-${S}`, 'digest-length'],
    ['long digest', `MESHTKN-1-${D}00-${S}`, 'digest-length'],
    ['uppercase digest', `MESHTKN-1-${D.toUpperCase()}-${S}`, 'digest-charset'],
    ['non-hex digest', `MESHTKN-1-${'zz'.repeat(32)}-${S}`, 'digest-charset'],
    ['short secret', `MESHTKN-1-${D}-${S.slice(1)}`, 'secret-length'],
    ['long secret', `MESHTKN-1-${D}-${S}0`, 'secret-length'],
    ['non-hex secret', `MESHTKN-1-${D}-${'g'.repeat(32)}`, 'secret-charset'],
  ];
  for (const [name, input, reason] of table) {
    test(`${name} → MESHD_BAD_TOKEN (${reason})`, () => {
      assert.throws(() => parseJoinToken(input), bad('MESHD_BAD_TOKEN', reason));
    });
  }
  test('the error message never contains the secret', () => {
    try {
      parseJoinToken(`MESHTKN-9-${D}-${S}`);
      assert.fail('should throw');
    } catch (e) {
      assert.ok(!(e as Error).message.includes(S));
    }
  });
});

describe('secrets and roles', () => {
  test('format/parse round trip; secrets from bytes are 32 hex chars', () => {
    const s = secretFromBytes(bytes(0xab));
    assert.equal(s, 'ab'.repeat(16));
    assert.equal(parseJoinToken(formatJoinToken(D, s)).secret, s);
    assert.throws(() => secretFromBytes(new Uint8Array(15)), bad('MESHD_BAD_ARGUMENT'));
    assert.throws(() => formatJoinToken('xyz', s), bad('MESHD_BAD_TOKEN'));
  });

  test('worker and manager secrets differ; rotation changes only one role', () => {
    assert.throws(() => newTokenSecrets(bytes(1), bytes(1)), bad('MESHD_BAD_ARGUMENT'));
    const s = newTokenSecrets(bytes(1), bytes(2));
    const r = rotateSecret(s, 'worker', bytes(3));
    assert.equal(r.manager, s.manager);
    assert.notEqual(r.worker, s.worker);
    assert.throws(() => rotateSecret(s, 'worker', bytes(2)), bad('MESHD_BAD_ARGUMENT'));
  });

  test('roleForToken: worker, manager, rotated, other cluster', () => {
    const s = newTokenSecrets(bytes(1), bytes(2));
    assert.equal(roleForToken(formatJoinToken(D, s.worker), D, s, eq), 'worker');
    assert.equal(roleForToken(formatJoinToken(D, s.manager), D, s, eq), 'manager');
    const rotated = rotateSecret(s, 'worker', bytes(3));
    assert.throws(() => roleForToken(formatJoinToken(D, s.worker), D, rotated, eq), bad('MESHD_TOKEN_REJECTED', 'secret'));
    assert.throws(() => roleForToken(formatJoinToken('cd'.repeat(32), s.worker), D, s, eq), bad('MESHD_TOKEN_REJECTED', 'ca-digest'));
    assert.throws(() => roleForToken('junk', D, s, eq), bad('MESHD_BAD_TOKEN'));
  });

  test('roleForToken compares both secrets every time', () => {
    const s = newTokenSecrets(bytes(1), bytes(2));
    const calls: string[] = [];
    const counting = (a: string, b: string): boolean => {
      calls.push(b);
      return a === b;
    };
    roleForToken(formatJoinToken(D, s.worker), D, s, counting);
    assert.deepEqual(calls, [s.worker, s.manager]);
  });

  test('grantedRole table', () => {
    assert.equal(grantedRole('worker', undefined), 'worker');
    assert.equal(grantedRole('manager', undefined), 'manager');
    assert.equal(grantedRole('manager', 'worker'), 'worker');
    assert.equal(grantedRole('worker', 'worker'), 'worker');
    assert.throws(() => grantedRole('worker', 'manager'), bad('MESHD_TOKEN_REJECTED', 'role'));
  });

  test('parseTokenSecrets refuses malformed stored documents', () => {
    const s = newTokenSecrets(bytes(1), bytes(2));
    assert.deepEqual(parseTokenSecrets(JSON.parse(JSON.stringify(s))), s);
    for (const v of [null, 1, {}, { worker: s.worker }, { worker: 'x', manager: s.manager }]) {
      assert.throws(() => parseTokenSecrets(v), bad('MESHD_STORE_CORRUPT'));
    }
  });
});
