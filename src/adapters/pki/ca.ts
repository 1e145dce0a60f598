/**
 * The cluster's root CA (swarm's model): a self-signed ECDSA P-256 root that signs one
 * certificate per node. Subject of a node certificate: CN=<node id>, OU=<role>, O=meshd;
 * the role in OU is what the manager API authorizes on. The manager ignores the subject
 * in the CSR (the CSR only proves possession of the key) and writes its own.
 *
 * Time is passed in (`now: Date`) so tests can issue certificates in the past.
 */
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';
import { MeshError } from '../../core/errors.js';
import { isJoinRole, type JoinRole } from '../../core/tokens/tokens.js';
import {
  certDigest, EC_ALGORITHM, escapeDnValue, exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem,
  MAX_PEM_BYTES, parseCertPem, randomSerial, SIGNING_ALGORITHM, wcrypto,
} from './crypto.js';
import type { RevocationList } from './revocation.js';

const DAY_MS = 86_400_000;
/** Node certificates: 90 days, swarm's default. */
export const DEFAULT_NODE_VALIDITY_MS = 90 * DAY_MS;
/** Root CA: 20 years, swarm's default. */
export const DEFAULT_CA_VALIDITY_MS = 20 * 365 * DAY_MS;
/** Tolerated clock skew: certificates start this much before `now`. */
export const CLOCK_SKEW_MS = 5 * 60_000;
export const CERT_ORG = 'meshd';

/** Who a verified peer certificate says it is. */
export interface PeerIdentity {
  nodeId: string;
  role: JoinRole;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IssueParams {
  csrPem: unknown;
  nodeId: string;
  role: JoinRole;
  /** IP addresses or DNS names to put in the SAN (the node's advertise address). */
  sans?: string[];
  now: Date;
  validityMs?: number;
}

export interface IssuedCert {
  certPem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

const NODE_ID_RE = /^[a-z0-9]{1,64}$/;

function rejected(reason: string, message: string, extra: Record<string, unknown> = {}): MeshError {
  return new MeshError('MESHD_CERT_REJECTED', message, { reason, ...extra });
}

export class CertificateAuthority {
  readonly digest: string;
  readonly certPem: string;
  /** Certificates this CA signed, by their bytes (base64 DER, or the PEM text): see CertFacts. */
  private readonly verified = new Map<string, CertFacts>();

  private constructor(
    readonly cert: x509.X509Certificate,
    private readonly keys: CryptoKeyPair,
  ) {
    this.digest = certDigest(cert);
    this.certPem = cert.toString('pem');
  }

  /** A fresh root CA. */
  static async create(opts: { now: Date; validityMs?: number; name?: string }): Promise<CertificateAuthority> {
    const keys = await generateKeyPair();
    const notBefore = new Date(opts.now.getTime() - CLOCK_SKEW_MS);
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: `CN=${escapeDnValue(opts.name ?? 'meshd-root-ca')}, O=${CERT_ORG}`,
      notBefore,
      notAfter: new Date(opts.now.getTime() + (opts.validityMs ?? DEFAULT_CA_VALIDITY_MS)),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, wcrypto),
      ],
    }, wcrypto);
    return new CertificateAuthority(cert, keys);
  }

  /** Loads a CA from its certificate and PKCS#8 key PEMs, checking they belong together. */
  static async load(certPem: string, keyPem: string): Promise<CertificateAuthority> {
    const cert = parseCertPem(certPem, 'CA certificate');
    const keys = await importPrivateKeyPem(keyPem);
    const spki = Buffer.from(await wcrypto.subtle.exportKey('spki', keys.publicKey));
    if (!spki.equals(Buffer.from(cert.publicKey.rawData))) {
      throw new MeshError('MESHD_BAD_CONFIG', 'CA private key does not match the CA certificate');
    }
    return new CertificateAuthority(cert, keys);
  }

  keyPem(): Promise<string> {
    return exportPrivateKeyPem(this.keys.privateKey);
  }

  /** Signs a node certificate for the key in `csrPem` (which must be a valid P-256 CSR). */
  async issue(p: IssueParams): Promise<IssuedCert> {
    if (!NODE_ID_RE.test(p.nodeId)) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid node id ${JSON.stringify(p.nodeId)}`);
    if (!isJoinRole(p.role)) throw new MeshError('MESHD_BAD_ARGUMENT', `invalid role ${JSON.stringify(p.role)}`);
    const validity = p.validityMs ?? DEFAULT_NODE_VALIDITY_MS;
    if (!Number.isSafeInteger(validity) || validity <= 0) throw new MeshError('MESHD_BAD_ARGUMENT', 'certificate validity must be a positive integer of ms');
    const csr = await parseCsr(p.csrPem);
    const sans = (p.sans ?? []).map((s) => ({ type: isIP(s) ? ('ip' as const) : ('dns' as const), value: s }));
    const notBefore = new Date(p.now.getTime() - CLOCK_SKEW_MS);
    const notAfter = new Date(p.now.getTime() + validity);
    const serial = randomSerial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: `CN=${p.nodeId}, OU=${p.role}, O=${CERT_ORG}`,
      issuer: this.cert.subject,
      notBefore,
      notAfter,
      publicKey: csr.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        ...(sans.length ? [new x509.SubjectAlternativeNameExtension(sans, false)] : []),
        await x509.AuthorityKeyIdentifierExtension.create(this.keys.publicKey, false, wcrypto),
      ],
    }, wcrypto);
    return { certPem: cert.toString('pem'), serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter };
  }

  /**
   * Verifies a peer certificate (DER from the TLS socket, or PEM): signed by this CA,
   * within its validity at `now`, a node (not CA) certificate with a known role, and not
   * revoked. Every failure is MESHD_CERT_REJECTED with details.reason
   * (`missing`, `malformed`, `foreign`, `expired`, `not-yet-valid`, `not-a-node`, `revoked`).
   */
  async verifyPeer(certData: Uint8Array | string | undefined, now: Date, revoked?: RevocationList): Promise<PeerIdentity> {
    if (certData === undefined || certData.length === 0) throw rejected('missing', 'no client certificate: this endpoint needs a node certificate of this cluster');
    const key = typeof certData === 'string' ? certData : Buffer.from(certData.buffer, certData.byteOffset, certData.byteLength).toString('base64');
    const facts = this.verified.get(key) ?? (await this.signedFacts(certData));
    if (!this.verified.has(key)) {
      if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(key, facts);
    }
    return checkFacts(facts, now, revoked);
  }

  /**
   * Facts of `certData` that depend only on its bytes and this CA: parsed, and signed by this CA
   * (else MESHD_CERT_REJECTED `malformed` / `foreign`; neither is cached).
   */
  private async signedFacts(certData: Uint8Array | string): Promise<CertFacts> {
    let cert: x509.X509Certificate;
    try {
      cert = typeof certData === 'string' ? parseCertPem(certData) : new x509.X509Certificate(new Uint8Array(certData));
    } catch (e) {
      throw rejected('malformed', `client certificate is not valid X.509: ${(e as Error).message}`);
    }
    let signedByUs = false;
    if (cert.issuer === this.cert.subject) {
      try {
        signedByUs = await cert.verify({ publicKey: this.cert.publicKey, signatureOnly: true }, wcrypto);
      } catch {
        signedByUs = false;
      }
    }
    if (!signedByUs) throw rejected('foreign', 'client certificate was not issued by this cluster\'s CA');
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    const role = cert.subjectName.getField('OU')[0];
    return {
      nodeId: cert.subjectName.getField('CN')[0] ?? '', role: isJoinRole(role) ? role : undefined, isCa: bc?.ca === true,
      serial: cert.serialNumber, notBefore: cert.notBefore, notAfter: cert.notAfter,
    };
  }
}

/**
 * Certificates verified at most (by their bytes). A node holds one certificate at a time (two
 * around a renewal), so this is far above any cluster's size; past it the oldest entry goes.
 */
export const VERIFIED_CACHE_MAX = 4096;

/**
 * What verifyPeer keeps of a certificate this CA signed: parsing and the ECDSA signature check
 * cost ~1 ms of CPU each (measured: with a new TLS connection per request they were 23 % of a
 * loaded manager's CPU) and depend only on the bytes. Validity, role and revocation depend on
 * the time and the store, so checkFacts runs them on every request.
 */
interface CertFacts {
  nodeId: string;
  role: JoinRole | undefined;
  isCa: boolean;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** The per-request checks of a certificate this CA signed (see verifyPeer's failure reasons). */
function checkFacts(f: CertFacts, now: Date, revoked?: RevocationList): PeerIdentity {
  const t = now.getTime();
  if (t > f.notAfter.getTime()) throw rejected('expired', `client certificate expired at ${f.notAfter.toISOString()}`, { notAfter: f.notAfter.toISOString() });
  if (t < f.notBefore.getTime()) throw rejected('not-yet-valid', `client certificate is not valid before ${f.notBefore.toISOString()}`);
  if (f.isCa || !NODE_ID_RE.test(f.nodeId) || f.role === undefined) throw rejected('not-a-node', 'client certificate is not a node certificate (CN=<node id>, OU=worker|manager)');
  if (revoked?.isRevoked(f.nodeId, f.serial)) throw rejected('revoked', `certificate of node ${f.nodeId} has been revoked (node removed)`, { nodeId: f.nodeId });
  return { nodeId: f.nodeId, role: f.role, serial: f.serial, notBefore: f.notBefore, notAfter: f.notAfter };
}

/** Parses and checks a CSR: one PEM block, valid self-signature (key possession), P-256. */
export async function parseCsr(pem: unknown): Promise<x509.Pkcs10CertificateRequest> {
  if (typeof pem !== 'string' || pem.length > MAX_PEM_BYTES) throw new MeshError('MESHD_BAD_ARGUMENT', `csr must be a PEM string under ${MAX_PEM_BYTES} bytes`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `csr is not a valid PKCS#10 request: ${(e as Error).message}`);
  }
  const alg = csr.publicKey.algorithm as EcKeyAlgorithm;
  if (alg.name !== EC_ALGORITHM.name || alg.namedCurve !== EC_ALGORITHM.namedCurve) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `csr key must be ECDSA P-256, got ${alg.name}${alg.namedCurve ? ` ${alg.namedCurve}` : ''}`);
  }
  let ok = false;
  try {
    ok = await csr.verify(wcrypto);
  } catch {
    ok = false;
  }
  if (!ok) throw new MeshError('MESHD_BAD_ARGUMENT', 'csr signature does not verify');
  return csr;
}
