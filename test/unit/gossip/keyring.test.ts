import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ENCRYPTION_OVERHEAD, Keyring } from '../../../src/adapters/gossip/keyring.js';
import { MeshError } from '../../../src/core/errors.js';

const k1 = new Uint8Array(32).fill(1);
const k2 = new Uint8Array(32).fill(2);
const k3 = new Uint8Array(32).fill(3);
const msg = new TextEncoder().encode('ping me');
const isCode = (code: string) => (e: unknown) => e instanceof MeshError && e.code === code;

describe('AES-256-GCM keyring', () => {
  test('round-trips; layout [ver][nonce 12][ct][tag 16]; nonces differ', () => {
    const r = new Keyring('meshd', k1);
    const a = r.encrypt(msg);
    const b = r.encrypt(msg);
    assert.equal(a.length, msg.length + ENCRYPTION_OVERHEAD);
    assert.equal(a[0], 1);
    assert.notDeepEqual(a.subarray(1, 13), b.subarray(1, 13));
    const d = r.decrypt(a);
    assert.ok(d.ok);
    assert.deepEqual(d.ok && [...d.plain], [...msg]);
  });
  test('wrong key, other cluster, tampering, truncation, wrong version → decrypt failure', () => {
    const r = new Keyring('meshd', k1);
    const w = r.encrypt(msg);
    assert.deepEqual(new Keyring('meshd', k2).decrypt(w), { ok: false, reason: 'decrypt' });
    assert.deepEqual(new Keyring('other', k1).decrypt(w), { ok: false, reason: 'decrypt' });
    for (const i of [0, 1, 13, w.length - 1]) {
      const t = w.slice();
      t[i] = t[i]! ^ 0x80;
      assert.deepEqual(r.decrypt(t), { ok: false, reason: 'decrypt' }, `flip at ${i}`);
    }
    assert.deepEqual(r.decrypt(w.subarray(0, ENCRYPTION_OVERHEAD - 1)), { ok: false, reason: 'decrypt' });
    assert.deepEqual(r.decrypt(new Uint8Array(0)), { ok: false, reason: 'decrypt' });
    for (let i = 0; i < 200; i++) assert.equal(r.decrypt(randomBytes(i)).ok, false);
  });
  test('rotation: install → use → remove; secondaries still decrypt', () => {
    const a = new Keyring('meshd', k1);
    const b = new Keyring('meshd', k1);
    b.install(k2);
    b.use(k2);
    const fromB = b.encrypt(msg);
    assert.equal(a.decrypt(fromB).ok, false);
    a.install(k2);
    assert.equal(a.decrypt(fromB).ok, true, 'secondary key decrypts');
    assert.equal(b.decrypt(a.encrypt(msg)).ok, true, 'old primary still installed on b');
    a.use(k2);
    a.remove(k1);
    b.remove(k1);
    assert.deepEqual(a.keys(), [k2]);
    assert.equal(b.decrypt(a.encrypt(msg)).ok, true);
  });
  test('refusals', () => {
    const r = new Keyring('meshd', k1, [k2]);
    assert.throws(() => r.remove(k1), isCode('MESHD_BAD_ARGUMENT'));
    assert.throws(() => r.remove(k3), isCode('MESHD_NOT_FOUND'));
    assert.throws(() => r.use(k3), isCode('MESHD_NOT_FOUND'));
    assert.throws(() => r.install(new Uint8Array(16)), isCode('MESHD_BAD_ARGUMENT'));
    assert.throws(() => new Keyring('', k1), isCode('MESHD_BAD_ARGUMENT'));
    r.install(k2);
    assert.equal(r.keys().length, 2, 'install is idempotent');
    assert.deepEqual(r.primary, k1);
  });
});
