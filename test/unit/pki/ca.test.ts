import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { MeshError } from '../../../src/core/errors.js';
import { CertificateAuthority, DEFAULT_NODE_VALIDITY_MS, parseCsr } from '../../../src/adapters/pki/ca.js';
import { certDigestOfPem, createNodeKeyAndCsr, parseCertPem, secretEquals, wcrypto } from '../../../src/adapters/pki/crypto.js';
import { RevocationList } from '../../../src/adapters/pki/revocation.js';
import { renewalDue, renewalTime } from '../../../src/adapters/pki/renewal.js';
import { loadNodeIdentity, saveNodeIdentity } from '../../../src/adapters/pki/files.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const DAY = 86_400_000;
const rejected = (reason: string) => (e: unknown): boolean => e instanceof MeshError && e.code === 'MESHD_CERT_REJECTED' && e.details?.reason === reason;
const badArg = (e: unknown): boolean => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT';

const dir = mkdtempSync(join(tmpdir(), 'meshd-pki-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('root CA and node certificates', async () => {
  const ca = await CertificateAuthority.create({ now: T0 });
  const other = await CertificateAuthority.create({ now: T0 });
  const { keyPem, csrPem } = await createNodeKeyAndCsr('node-a');
  const issued = await ca.issue({ csrPem, nodeId: 'abc123', role: 'worker', sans: ['10.0.0.5', 'node-a'], now: T0 });

  test('CA: self-signed ECDSA P-256 CA certificate; digest is sha256 of the DER', () => {
    const c = parseCertPem(ca.certPem);
    assert.equal(c.getExtension(x509.BasicConstraintsExtension)?.ca, true);
    assert.equal((c.publicKey.algorithm as EcKeyAlgorithm).namedCurve, 'P-256');
    assert.equal(ca.digest, createHash('sha256').update(Buffer.from(c.rawData)).digest('hex'));
    assert.equal(certDigestOfPem(ca.certPem), ca.digest);
    assert.notEqual(ca.digest, other.digest);
  });

  test('node certificate: CN=id, OU=role, SANs, 90 days, both EKUs, verifies against the CA', async () => {
    const c = parseCertPem(issued.certPem);
    assert.equal(c.subjectName.getField('CN')[0], 'abc123');
    assert.equal(c.subjectName.getField('OU')[0], 'worker');
    const san = c.getExtension(x509.SubjectAlternativeNameExtension)!;
    assert.deepEqual(san.names.toJSON(), [{ type: 'ip', value: '10.0.0.5' }, { type: 'dns', value: 'node-a' }]);
    assert.equal(issued.notAfter.getTime(), T0.getTime() + DEFAULT_NODE_VALIDITY_MS);
    const eku = c.getExtension(x509.ExtendedKeyUsageExtension)!;
    assert.deepEqual([...eku.usages], [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]);
    assert.equal(await c.verify({ publicKey: parseCertPem(ca.certPem).publicKey, signatureOnly: true }, wcrypto), true);
    const id = await ca.verifyPeer(Buffer.from(c.rawData), new Date(T0.getTime() + DAY));
    assert.deepEqual([id.nodeId, id.role, id.serial], ['abc123', 'worker', issued.serial]);
    assert.ok(keyPem.includes('PRIVATE KEY'));
  });

  test('verifyPeer refuses: missing, malformed, foreign, expired, not yet valid, CA cert, revoked', async () => {
    const now = new Date(T0.getTime() + DAY);
    await assert.rejects(ca.verifyPeer(undefined, now), rejected('missing'));
    await assert.rejects(ca.verifyPeer(new Uint8Array([1, 2, 3]), now), rejected('malformed'));
    const foreign = await other.issue({ csrPem, nodeId: 'abc123', role: 'manager', now: T0 });
    await assert.rejects(ca.verifyPeer(foreign.certPem, now), rejected('foreign'));
    await assert.rejects(ca.verifyPeer(issued.certPem, new Date(T0.getTime() + 91 * DAY)), rejected('expired'));
    await assert.rejects(ca.verifyPeer(issued.certPem, new Date(T0.getTime() - DAY)), rejected('not-yet-valid'));
    await assert.rejects(ca.verifyPeer(ca.certPem, now), rejected('not-a-node'));
    const byNode = new RevocationList();
    byNode.revokeNode('abc123', issued.notAfter.getTime(), now.getTime());
    await assert.rejects(ca.verifyPeer(issued.certPem, now, byNode), rejected('revoked'));
    const bySerial = new RevocationList();
    bySerial.revokeSerial(issued.serial.toUpperCase(), issued.notAfter.getTime(), now.getTime());
    await assert.rejects(ca.verifyPeer(issued.certPem, now, bySerial), rejected('revoked'));
    const unrelated = new RevocationList();
    unrelated.revokeNode('zzz', 0, 0);
    assert.equal((await ca.verifyPeer(issued.certPem, now, unrelated)).nodeId, 'abc123');
  });

  test('verifyPeer keeps what the bytes decide (parse + signature), never what time or revocation decide', async () => {
    const fresh = await ca.issue({ csrPem, nodeId: 'cached1', role: 'manager', now: T0 });
    const der = Buffer.from(parseCertPem(fresh.certPem).rawData);
    const now = new Date(T0.getTime() + DAY);
    const first = await ca.verifyPeer(der, now);
    // Same bytes in a different buffer (a new TLS connection's copy): the same identity.
    assert.deepEqual(await ca.verifyPeer(new Uint8Array(Buffer.from(der)), now), first);
    // Checked on every call, cached or not: validity and revocation.
    await assert.rejects(ca.verifyPeer(der, new Date(T0.getTime() + 91 * DAY)), rejected('expired'));
    const gone = new RevocationList();
    gone.revokeNode('cached1', fresh.notAfter.getTime(), now.getTime());
    await assert.rejects(ca.verifyPeer(der, now, gone), rejected('revoked'));
    // One flipped bit in the signature is other bytes: verified again, and refused.
    const bent = Buffer.from(der);
    bent[bent.length - 2]! ^= 0x01;
    await assert.rejects(ca.verifyPeer(bent, now), (e: unknown) => rejected('foreign')(e) || rejected('malformed')(e));
    // A refused certificate is not kept: refused again the same way.
    await assert.rejects(ca.verifyPeer(bent, now), (e: unknown) => rejected('foreign')(e) || rejected('malformed')(e));
  });

  test('issue refuses bad CSRs, ids, roles and validity', async () => {
    await assert.rejects(ca.issue({ csrPem: 'junk', nodeId: 'a', role: 'worker', now: T0 }), badArg);
    await assert.rejects(ca.issue({ csrPem: 42, nodeId: 'a', role: 'worker', now: T0 }), badArg);
    await assert.rejects(ca.issue({ csrPem: 'x'.repeat(20000), nodeId: 'a', role: 'worker', now: T0 }), badArg);
    await assert.rejects(ca.issue({ csrPem, nodeId: 'Bad Id', role: 'worker', now: T0 }), badArg);
    await assert.rejects(ca.issue({ csrPem, nodeId: 'a', role: 'admin' as 'worker', now: T0 }), badArg);
    await assert.rejects(ca.issue({ csrPem, nodeId: 'a', role: 'worker', now: T0, validityMs: -1 }), badArg);
    // A CSR whose signature was tampered with (proof of possession fails).
    const der = Buffer.from(x509.PemConverter.decode(csrPem)[0]!);
    der[der.length - 5] = der[der.length - 5]! ^ 0xff;
    await assert.rejects(parseCsr(x509.PemConverter.encode(der, 'CERTIFICATE REQUEST')), badArg);
    // An RSA key is refused.
    const rsa = await wcrypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify']) as CryptoKeyPair;
    const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=x', keys: rsa, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' } }, wcrypto);
    await assert.rejects(parseCsr(rsaCsr.toString('pem')), badArg);
  });

  test('load round-trips a CA and refuses a key of another CA', async () => {
    const again = await CertificateAuthority.load(ca.certPem, await ca.keyPem());
    assert.equal(again.digest, ca.digest);
    const more = await again.issue({ csrPem, nodeId: 'n2', role: 'manager', now: T0 });
    assert.equal((await ca.verifyPeer(more.certPem, T0)).role, 'manager');
    await assert.rejects(CertificateAuthority.load(ca.certPem, await other.keyPem()), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_CONFIG');
    await assert.rejects(CertificateAuthority.load(ca.certPem, 'not a key'), badArg);
    const pkcs1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'sec1' }).toString();
    await assert.rejects(CertificateAuthority.load(ca.certPem, pkcs1));
  });

  test('identity files: key 0600, round trip', () => {
    const d = join(dir, 'id');
    const id = { nodeId: 'abc123', role: 'worker' as const, managerAddr: '10.0.0.1:2377', caPem: ca.certPem, certPem: issued.certPem, keyPem };
    saveNodeIdentity(d, id);
    assert.equal(statSync(join(d, 'node.key')).mode & 0o777, 0o600);
    assert.deepEqual(loadNodeIdentity(d), id);
    assert.throws(() => loadNodeIdentity(join(dir, 'none')), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_NOT_FOUND');
  });
});

describe('revocation list', () => {
  test('JSON round trip, prune after expiry, malformed documents refused', () => {
    const l = new RevocationList();
    l.revokeNode('a', 100, 1);
    l.revokeSerial('0A', 300, 2);
    const back = RevocationList.fromJSON(JSON.parse(JSON.stringify(l.toJSON())));
    assert.equal(back.isRevoked('a', 'ff'), true);
    assert.equal(back.isRevoked('b', '0a'), true);
    assert.equal(back.isRevoked('b', 'ff'), false);
    assert.equal(back.prune(200), 1);
    assert.equal(back.isRevoked('a', 'ff'), false);
    assert.equal(back.size, 1);
    assert.equal(RevocationList.fromJSON(undefined).size, 0);
    for (const v of [{}, [1], [{ kind: 'x', id: 'a', until: 1, at: 1 }], [{ kind: 'node', id: 1, until: 1, at: 1 }]]) {
      assert.throws(() => RevocationList.fromJSON(v), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_STORE_CORRUPT');
    }
  });
});

describe('renewal formula', () => {
  const table: [number, number, number, number][] = [
    // notBefore, notAfter, jitter, expected renewal time
    [0, 1000, 0, 500], [0, 1000, 1, 800], [0, 1000, 0.5, 650], [100, 1100, 0, 600],
    [0, 1000, -3, 500], [0, 1000, 7, 800], [0, 1000, Number.NaN, 500], [1000, 0, 0, 1000],
  ];
  for (const [nb, na, j, want] of table) {
    test(`renewalTime(${nb}, ${na}, ${j}) = ${want}`, () => assert.equal(renewalTime(nb, na, j), want));
  }
  test('renewalDue', () => {
    assert.equal(renewalDue(0, 1000, 499), false);
    assert.equal(renewalDue(0, 1000, 500), true);
    assert.equal(renewalDue(0, 1000, 5000), true);
  });
});

describe('secretEquals', () => {
  test('equal, different, different lengths', () => {
    assert.equal(secretEquals('abc', 'abc'), true);
    assert.equal(secretEquals('abc', 'abd'), false);
    assert.equal(secretEquals('abc', 'abcd'), false);
    assert.equal(secretEquals('', ''), true);
  });
});
