/**
 * The store's sealing (src/adapters/pki/seal.ts): round trips, and every way a sealed value can
 * be damaged or misused → a stable code (MESHD_UNSEAL_FAILED for authentication failures,
 * MESHD_STORE_CORRUPT for values that are not sealed records at all).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { isSealed, newDataKey, open, openJson, seal, sealJson, Sealer, type SealedValue } from '../../../src/adapters/pki/seal.js';

const KEY = Buffer.alloc(32, 7);
const OTHER = Buffer.alloc(32, 8);
const AAD = 'secrets/pw';

function flip(b64: string, at: number): string {
  const b = Buffer.from(b64, 'base64');
  b[at % b.length] = b[at % b.length]! ^ 0x01;
  return b.toString('base64');
}

describe('seal / open', () => {
  test('round trip; fresh nonce per value; the plain text is not in the record', () => {
    const a = seal(KEY, AAD, Buffer.from('hunter2-plain'));
    const b = seal(KEY, AAD, Buffer.from('hunter2-plain'));
    assert.notEqual(a.nonce, b.nonce);
    assert.notEqual(a.ct, b.ct);
    assert.equal(open(KEY, AAD, a).toString(), 'hunter2-plain');
    assert.ok(!JSON.stringify(a).includes('hunter2'));
    assert.ok(isSealed(a));
    assert.deepEqual(openJson(KEY, 'cluster/gossip-keys', sealJson(KEY, 'cluster/gossip-keys', { keys: ['k'] })), { keys: ['k'] });
  });

  test('a fixed nonce gives a fixed record (format is stable)', () => {
    const s = seal(KEY, AAD, Buffer.from('x'), Buffer.alloc(12, 1));
    assert.deepEqual(Object.keys(s).sort(), ['alg', 'ct', 'nonce', 'sealed']);
    assert.equal(s.alg, 'A256GCM');
    assert.equal(Buffer.from(s.ct, 'base64').length, 1 + 16);
  });

  const good = seal(KEY, AAD, Buffer.from('payload'));
  const cases: Array<[string, () => unknown, string]> = [
    ['tampered ciphertext', () => open(KEY, AAD, { ...good, ct: flip(good.ct, 0) }), 'MESHD_UNSEAL_FAILED'],
    ['tampered tag', () => open(KEY, AAD, { ...good, ct: flip(good.ct, Buffer.from(good.ct, 'base64').length - 1) }), 'MESHD_UNSEAL_FAILED'],
    ['tampered nonce', () => open(KEY, AAD, { ...good, nonce: flip(good.nonce, 3) }), 'MESHD_UNSEAL_FAILED'],
    ['moved to another key (AAD)', () => open(KEY, 'secrets/other', good), 'MESHD_UNSEAL_FAILED'],
    ['another cluster\'s data key', () => open(OTHER, AAD, good), 'MESHD_UNSEAL_FAILED'],
    ['truncated below the tag', () => open(KEY, AAD, { ...good, ct: Buffer.alloc(8).toString('base64') }), 'MESHD_UNSEAL_FAILED'],
    ['short nonce', () => open(KEY, AAD, { ...good, nonce: Buffer.alloc(4).toString('base64') }), 'MESHD_UNSEAL_FAILED'],
    ['plain value (not sealed)', () => open(KEY, AAD, { keyPem: 'x' }), 'MESHD_STORE_CORRUPT'],
    ['unknown algorithm', () => open(KEY, AAD, { ...good, alg: 'A128CBC' } as unknown as SealedValue), 'MESHD_STORE_CORRUPT'],
    ['non-base64', () => open(KEY, AAD, { ...good, ct: '!!!' }), 'MESHD_STORE_CORRUPT'],
    ['sealed non-JSON opened as JSON', () => openJson(KEY, AAD, seal(KEY, AAD, Buffer.from('{nope'))), 'MESHD_STORE_CORRUPT'],
    ['a 16-byte key', () => seal(Buffer.alloc(16), AAD, Buffer.from('x')), 'MESHD_BAD_ARGUMENT'],
  ];
  for (const [name, fn, code] of cases) {
    test(`${name} → ${code}`, () => {
      assert.throws(fn, (e: unknown) => e instanceof MeshError && e.code === code);
    });
  }

  test('the Sealer never shows its key (JSON, inspect)', () => {
    const key = newDataKey();
    const s = new Sealer(key);
    assert.equal(JSON.stringify({ s }), '{"s":"[data key]"}');
    assert.ok(!JSON.stringify(s).includes(key.toString('base64')));
    assert.equal(s.open(AAD, s.seal(AAD, Buffer.from('v'))).toString(), 'v');
    assert.equal(s.exportForManager(), key.toString('base64'));
  });
});
