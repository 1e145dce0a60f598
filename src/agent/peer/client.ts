/**
 * One request from this agent to another node's peer API: HTTPS with this node's certificate,
 * the cluster CA pinned (never the system roots), and the server required to be a node of the
 * cluster at the address we dialed (IP SAN, written by the CA at join) — so a host that took
 * over a peer's address without its key is refused. Every failure to get an answer is
 * MESHD_PEER_UNREACHABLE with details.reason; an answer (also a 4xx) is returned as is.
 */
import { request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { MeshError } from '../../core/errors.js';
import { peerIdentityFromSubject } from './policy.js';

export interface PeerCredentials {
  caPem: string;
  certPem: string;
  keyPem: string;
}

export interface PeerTarget {
  name: string;
  ip: string;
  port: number;
}

/** The server must be at the address we dialed (IP SAN) and carry a node subject (CN=id, OU=role). */
export function checkPeerServer(host: string, cert: PeerCertificate): Error | undefined {
  const e = checkServerIdentity(host, cert);
  if (e) return e;
  try {
    peerIdentityFromSubject(cert.subject as { CN?: string; OU?: string });
  } catch (err) {
    return Object.assign(new Error((err as Error).message), { code: 'ERR_MESHD_NOT_A_NODE' });
  }
  return undefined;
}

const TLS_REFUSED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_MESHD_NOT_A_NODE',
]);

/**
 * Sends the request; resolves with the response once its headers arrived. `timeoutMs` bounds
 * connect + TLS + headers only: a followed log may then stay quiet for hours.
 */
export function peerRequest(t: PeerTarget, creds: PeerCredentials, method: string, path: string, body: unknown, timeoutMs: number): Promise<IncomingMessage> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const where = `node ${t.name} at ${t.ip}:${t.port}`;
  return new Promise((resolve, reject) => {
    const req = request({
      host: t.ip, port: t.port, method, path, agent: false,
      headers: payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      ca: [creds.caPem], cert: creds.certPem, key: creds.keyPem,
      rejectUnauthorized: true, checkServerIdentity: checkPeerServer, minVersion: 'TLSv1.2',
    }, (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    const timer = setTimeout(() => req.destroy(new MeshError('MESHD_PEER_UNREACHABLE', `${where} did not answer in ${timeoutMs} ms`, { node: t.name, addr: `${t.ip}:${t.port}`, reason: 'timeout' })), timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e instanceof MeshError) return reject(e);
      const code = e.code ?? 'error';
      const why = TLS_REFUSED.has(code) ? `its certificate is not valid for this cluster (${code}: ${e.message})` : code === 'ECONNRESET' ? 'the connection was reset (TLS refused this node\'s certificate, or the agent went away)' : `${code}${e.message && e.message !== code ? `: ${e.message}` : ''}`;
      reject(new MeshError('MESHD_PEER_UNREACHABLE', `cannot reach ${where}: ${why}`, { node: t.name, addr: `${t.ip}:${t.port}`, reason: code }));
    });
    req.end(payload);
  });
}
