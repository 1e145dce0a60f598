/**
 * The joining side (`netctl cluster join --token T ADDR`), swarm's flow:
 *  1. parse the token locally (a malformed token never leaves the machine);
 *  2. fetch the manager's CA over unauthenticated TLS and pin it only if its sha256
 *     digest equals the token's — otherwise refuse (MESHD_CA_MISMATCH): a token thus
 *     authenticates the manager, no trust on first use;
 *  3. make a key and CSR locally (the private key never leaves the node) and send the
 *     token and CSR to POST /v1/join over TLS that now verifies the manager against the
 *     pinned CA;
 *  4. check the returned certificate (pinned CA, our key) and save the identity in dataDir.
 * Also certificate renewal, done by the agent before expiry.
 */
import { MeshError } from '../core/errors.js';
import { parseJoinToken, type JoinRole } from '../core/tokens/tokens.js';
import { certDigestOfPem, createNodeKeyAndCsr, importPrivateKeyPem, parseCertPem, wcrypto } from '../adapters/pki/crypto.js';
import { hasNodeIdentity, loadNodeIdentity, saveNodeIdentity, type NodeIdentity } from '../adapters/pki/files.js';
import { renewalDue } from '../adapters/pki/renewal.js';
import { checkGossipKeys } from './gossip-keys.js';
import { parseDataKey, removeDataKey, saveDataKey } from './data-key.js';
import { checkStoreConfig, type StoreConfig } from './store-config.js';
import { httpsRequest, ManagerClient, parseManagerAddr, responseError, type ManagerEndpoint } from './client.js';

export interface JoinOptions {
  /** Manager address, host:port. */
  addr: string;
  token: string;
  nodeName: string;
  dataDir: string;
  /** Ask for a lower role than the token grants (a manager token joining as worker). */
  role?: JoinRole;
  /** This node's advertise IP, written in its certificate SAN. */
  advertiseAddr?: string;
  timeoutMs?: number;
  /**
   * This node will run a manager if granted the role: the manager refuses the join up front
   * when its store cannot be shared, and answers with the shared store's config otherwise.
   */
  hostManager?: boolean;
}

/** Fetches the manager's CA and returns it only if its digest is `expectedDigest`. */
export async function fetchPinnedCa(ep: ManagerEndpoint, expectedDigest: string, timeoutMs?: number): Promise<string> {
  const r = await httpsRequest(ep, {}, 'GET', '/v1/ca', undefined, timeoutMs);
  if (r.status !== 200) throw responseError(r);
  let digest: string;
  try {
    digest = certDigestOfPem(r.body);
  } catch (e) {
    throw new MeshError('MESHD_CA_MISMATCH', `manager ${ep.host}:${ep.port} sent no valid CA certificate`, undefined, { cause: e });
  }
  if (digest !== expectedDigest) {
    throw new MeshError('MESHD_CA_MISMATCH', `manager ${ep.host}:${ep.port} has CA digest ${digest.slice(0, 16)}…, the token expects ${expectedDigest.slice(0, 16)}… — wrong cluster, or someone in the middle`, { actual: digest, expected: expectedDigest });
  }
  return r.body;
}

async function checkIssued(certPem: string, caPem: string, keyPem: string, nodeId: string): Promise<void> {
  const cert = parseCertPem(certPem, 'issued certificate');
  const ca = parseCertPem(caPem, 'CA certificate');
  const signed = await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }, wcrypto).catch(() => false);
  const keys = await importPrivateKeyPem(keyPem);
  const spki = Buffer.from(await wcrypto.subtle.exportKey('spki', keys.publicKey));
  if (!signed || !spki.equals(Buffer.from(cert.publicKey.rawData)) || cert.subjectName.getField('CN')[0] !== nodeId) {
    throw new MeshError('MESHD_CERT_REJECTED', 'the manager returned a certificate that is not ours or not signed by the pinned CA', { reason: 'issued-mismatch' });
  }
}

/**
 * Joins a cluster; returns the saved identity (and, for a manager of an etcd cluster, the
 * store to run on). Refuses if dataDir already holds one.
 */
export async function joinCluster(o: JoinOptions): Promise<NodeIdentity & { store?: StoreConfig; gossipKeys?: string[] }> {
  const token = parseJoinToken(o.token);
  if (hasNodeIdentity(o.dataDir)) throw new MeshError('MESHD_CLUSTER_EXISTS', `${o.dataDir} already holds a node identity: leave the current cluster first`);
  const ep = parseManagerAddr(o.addr);
  const caPem = await fetchPinnedCa(ep, token.caDigest, o.timeoutMs);
  const { keyPem, csrPem } = await createNodeKeyAndCsr(o.nodeName);
  const r = await httpsRequest(ep, { caPem }, 'POST', '/v1/join', {
    token: o.token.trim(), csr: csrPem, name: o.nodeName,
    ...(o.role ? { role: o.role } : {}), ...(o.advertiseAddr ? { addr: o.advertiseAddr } : {}), ...(o.hostManager ? { hostManager: true } : {}),
  }, o.timeoutMs);
  if (r.status >= 400) throw responseError(r);
  const res = JSON.parse(r.body) as { nodeId: string; role: JoinRole; certPem: string; caPem: string; store?: unknown; gossipKeys?: unknown; dataKey?: unknown };
  // The cluster's gossip keyring, over the channel the pinned CA authenticates (absent: an older manager).
  const gossipKeys = res.gossipKeys === undefined ? undefined : checkGossipKeys(res.gossipKeys, 'join answer');
  const store = res.role === 'manager' && res.store !== undefined ? checkStoreConfig(res.store) : undefined;
  if (res.caPem.trim() !== caPem.trim()) throw new MeshError('MESHD_CA_MISMATCH', 'the manager answered the join with another CA than the pinned one');
  await checkIssued(res.certPem, caPem, keyPem, res.nodeId);
  const identity: NodeIdentity = { nodeId: res.nodeId, role: res.role, managerAddr: `${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}`, caPem, certPem: res.certPem, keyPem };
  saveNodeIdentity(o.dataDir, identity);
  // A manager opens the sealed store with the cluster data key (data-key.ts); it never leaves the data dir.
  if (res.role === 'manager' && res.dataKey !== undefined) saveDataKey(o.dataDir, parseDataKey(res.dataKey, 'join answer').toString('base64'));
  return { ...identity, ...(store ? { store } : {}), ...(gossipKeys ? { gossipKeys } : {}) };
}

/**
 * Renews this node's certificate with a new key and saves it (at `managerAddr`, default the
 * saved one); returns the new identity. The certificate carries the role the cluster now
 * gives the node (`node promote` / `demote`), so the identity takes that role; a manager also
 * gets the shared store it is to run on.
 */
export async function renewNodeCertificate(dataDir: string, timeoutMs?: number, managerAddr?: string): Promise<NodeIdentity & { store?: StoreConfig }> {
  const id = loadNodeIdentity(dataDir);
  const client = new ManagerClient(managerAddr ?? id.managerAddr, { caPem: id.caPem, certPem: id.certPem, keyPem: id.keyPem }, timeoutMs);
  const { keyPem, csrPem } = await createNodeKeyAndCsr(id.nodeId);
  const res = await client.call<{ certPem: string; caPem: string; role?: JoinRole; store?: unknown; dataKey?: unknown }>('POST', '/v1/certs/renew', { csr: csrPem });
  await checkIssued(res.certPem, id.caPem, keyPem, id.nodeId);
  const role: JoinRole = res.role === 'manager' || res.role === 'worker' ? res.role : id.role;
  const next = { ...id, role, certPem: res.certPem, keyPem };
  saveNodeIdentity(dataDir, next);
  if (role === 'manager' && res.dataKey !== undefined) saveDataKey(dataDir, parseDataKey(res.dataKey, 'renew answer').toString('base64'));
  if (role === 'worker') removeDataKey(dataDir); // demoted: a worker keeps no key to the sealed store
  const store = role === 'manager' && res.store !== undefined ? checkStoreConfig(res.store) : undefined;
  return store ? { ...next, store } : next;
}

/** Whether the node's certificate should be renewed now (`jitter` ∈ [0,1], see renewal.ts). */
export function certificateRenewalDue(identity: NodeIdentity, now: Date, jitter = 0): boolean {
  const c = parseCertPem(identity.certPem);
  return renewalDue(c.notBefore.getTime(), c.notAfter.getTime(), now.getTime(), jitter);
}
