/** The cluster keyring on an agent (issue 16 §4): adopt (install → use → remove), refusal of plain text, the init/join hand-out, the manager's checks. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { applyKeyPolicy, KeyStore } from '../../../../src/agent/gossip/keys.js';
import { ClusterGossipKeys } from '../../../../src/agent/link/gossip-keys.js';
import { checkGossipKeys, nextRotationStep, parseGossipKeysRecord, requestRotation, startRotation } from '../../../../src/manager/gossip-keys.js';
import { createLogger } from '../../../../src/adapters/logger.js';

const key = (): string => randomBytes(32).toString('base64');
const enc = new TextEncoder();
const silent = createLogger({ level: 'silent', name: 'test' });

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'mk16-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('KeyStore.adopt', () => {
  test('a node without a ring takes the cluster ring, persists it 0600, and seals from then on', () => withDir((dir) => {
    const ks = new KeyStore(dir, 'c');
    const cipher = ks.cipher();
    const plain = enc.encode('hello');
    assert.deepEqual(cipher.seal(plain), plain, 'plain text before any ring (not in a cluster)');
    const [a, b] = [key(), key()];
    assert.equal(ks.adopt([a, b]), true);
    assert.deepEqual(ks.exportKeys(), [a, b]);
    assert.notDeepEqual(cipher.seal(plain), plain);
    assert.equal(cipher.open(plain).ok, false, 'plain text refused once a ring exists');
    assert.equal(statSync(join(dir, 'gossip-keys')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, 'gossip-keys'), 'utf8'), `${a}\n${b}\n`);
    assert.deepEqual(new KeyStore(dir, 'c').exportKeys(), [a, b], 'a restart keeps the ring');
  }));

  test('a rotation in steps: install, use, remove; the same ring twice changes nothing', () => withDir((dir) => {
    const ks = new KeyStore(dir, 'c');
    const [old, neu] = [key(), key()];
    ks.adopt([old]);
    const oldSealed = ks.cipher().seal(enc.encode('x'));
    assert.equal(ks.adopt([old, neu]), true);
    assert.deepEqual(ks.exportKeys(), [old, neu]);
    assert.equal(ks.adopt([neu, old]), true);
    assert.deepEqual(ks.exportKeys(), [neu, old]);
    assert.equal(ks.cipher().open(oldSealed).ok, true, 'old packets still open after the switch');
    assert.equal(ks.adopt([neu, old]), false);
    assert.equal(ks.adopt([neu]), true);
    assert.deepEqual(ks.exportKeys(), [neu]);
    assert.equal(ks.cipher().open(oldSealed).ok, false, 'the removed key opens nothing');
  }));

  test('a bad key is a clear error, never a silent drop', () => withDir((dir) => {
    const ks = new KeyStore(dir, 'c');
    assert.throws(() => ks.adopt(['short']), { code: 'MESHD_BAD_ARGUMENT' });
    assert.throws(() => ks.adopt([]), { code: 'MESHD_BAD_ARGUMENT' });
    assert.equal(ks.exportKeys(), undefined);
  }));
});

describe('applyKeyPolicy', () => {
  test('a cluster node without a key neither speaks nor accepts plain text until it adopts the ring', () => withDir((dir) => {
    const ks = new KeyStore(dir, 'c');
    const warnings: unknown[] = [];
    applyKeyPolicy(ks, { inCluster: true, insecure: false }, { warn: (o) => warnings.push(o) });
    assert.equal(warnings.length, 1);
    const plain = enc.encode('hello');
    assert.notDeepEqual(ks.cipher().seal(plain), plain);
    assert.equal(ks.cipher().open(plain).ok, false);
    assert.equal(ks.list().encrypted, true);
    assert.equal(ks.exportKeys(), undefined, 'the placeholder key is never exported');
    const k = key();
    ks.adopt([k]);
    assert.deepEqual(ks.exportKeys(), [k]);
  }));

  test('insecure: plain text stays allowed, with a warning at every start', () => withDir((dir) => {
    const ks = new KeyStore(dir, 'c');
    const warnings: unknown[] = [];
    applyKeyPolicy(ks, { inCluster: true, insecure: true }, { warn: (o) => warnings.push(o) });
    assert.equal(warnings.length, 1);
    const plain = enc.encode('hello');
    assert.deepEqual(ks.cipher().seal(plain), plain);
  }));
});

describe('ClusterGossipKeys', () => {
  test('init creates a key when the node has none, keeps the node ring otherwise, none when insecure', () => withDir((dir) => {
    const fresh = new ClusterGossipKeys(new KeyStore(join(dir, 'a'), 'c'), false, silent);
    const made = fresh.forInit();
    assert.equal(made?.length, 1);
    assert.doesNotThrow(() => checkGossipKeys(made, 'init'));
    const ks = new KeyStore(join(dir, 'b'), 'c');
    const k = key();
    ks.adopt([k]);
    assert.deepEqual(new ClusterGossipKeys(ks, false, silent).forInit(), [k]);
    assert.equal(new ClusterGossipKeys(new KeyStore(join(dir, 'i'), 'c'), true, silent).forInit(), undefined);
  }));

  test('an absent or empty ring from an older manager changes nothing', () => withDir((dir) => {
    const ks = new KeyStore(dir, 'c');
    const ck = new ClusterGossipKeys(ks, false, silent);
    ck.take(undefined, 'join');
    ck.take([], 'manager');
    assert.equal(ks.exportKeys(), undefined);
  }));
});

describe('manager keyring record', () => {
  test('checks', () => {
    const k = key();
    assert.deepEqual(checkGossipKeys([k], 'x'), [k]);
    assert.equal(parseGossipKeysRecord(undefined), undefined);
    assert.deepEqual(parseGossipKeysRecord({ keys: [k] })?.keys, [k]);
    assert.throws(() => parseGossipKeysRecord({ keys: 'nope' }), { code: 'MESHD_STORE_CORRUPT' });
    assert.throws(() => checkGossipKeys([k, k], 'join answer'), { code: 'MESHD_BAD_ARGUMENT' });
    assert.throws(() => checkGossipKeys([], 'join answer'), { code: 'MESHD_BAD_ARGUMENT' });
    assert.throws(() => checkGossipKeys(['AAAA'], 'join answer'), { code: 'MESHD_BAD_ARGUMENT' });
  });
});

describe('the leader\'s rotation steps (nextRotationStep)', () => {
  const [a, b] = [key(), key()];
  const o = { periodMs: 0, fresh: () => b, stepMs: 5000 };
  test('a fresh ring gets its schedule start, then nothing is due without a period', () => {
    assert.deepEqual(nextRotationStep({ keys: [a] }, 1000, o), { keys: [a], rotatedAt: 1000 });
    assert.equal(nextRotationStep({ keys: [a], rotatedAt: 1000 }, 10 ** 12, o), undefined);
  });
  test('install → use → remove, one step per stepMs', () => {
    const r1 = startRotation({ keys: [a], rotatedAt: 0 }, b, 100);
    assert.deepEqual(r1.keys, [a, b]);
    assert.equal(r1.step, 'install');
    assert.equal(nextRotationStep(r1, 5099, o), undefined, 'not before stepMs');
    const r2 = nextRotationStep(r1, 5100, o)!;
    assert.deepEqual([r2.keys, r2.step], [[b, a], 'use']);
    const r3 = nextRotationStep(r2, 10_100, o)!;
    assert.deepEqual(r3, { keys: [b], rotatedAt: 10_100 });
    assert.throws(() => startRotation(r2, key(), 6000), { code: 'MESHD_ROTATION_BUSY' });
  });
  test('the schedule starts a rotation once the period has passed', () => {
    const r = nextRotationStep({ keys: [a], rotatedAt: 0 }, 43_200_000, { ...o, periodMs: 43_200_000 })!;
    assert.deepEqual([r.keys, r.step], [[a, b], 'install']);
    assert.equal(nextRotationStep({ keys: [a], rotatedAt: 1 }, 43_200_000, { ...o, periodMs: 43_200_000 }), undefined);
  });
  test('a stored record with an unknown step is refused loudly', () => {
    assert.throws(() => parseGossipKeysRecord({ keys: [a], step: 'boom' }), { code: 'MESHD_STORE_CORRUPT' });
    assert.deepEqual(parseGossipKeysRecord({ keys: [a], step: 'use', stepAt: 5 }), { keys: [a], step: 'use', stepAt: 5, rotatedAt: undefined });
  });
});

describe('node rm asks for a rotation (requestRotation)', () => {
  const [a, b, c] = [key(), key(), key()];
  test('idle: a rotation starts at once', () => {
    assert.deepEqual(requestRotation({ keys: [a], rotatedAt: 0 }, b, 7), { keys: [a, b], step: 'install', stepAt: 7, rotatedAt: 0 });
  });
  test('during a rotation: another one follows right after it', () => {
    const busy = requestRotation({ keys: [a, b], step: 'use', stepAt: 0, rotatedAt: 0 }, c, 1);
    assert.equal(busy.again, true);
    const ended = nextRotationStep(busy, 5000, { periodMs: 0, fresh: () => c, stepMs: 5000 })!;
    assert.deepEqual(ended, { keys: [a], rotatedAt: 5000, again: true });
    const next = nextRotationStep(ended, 5001, { periodMs: 0, fresh: () => c, stepMs: 5000 })!;
    assert.deepEqual([next.keys, next.step, next.again], [[a, c], 'install', undefined]);
  });
});
