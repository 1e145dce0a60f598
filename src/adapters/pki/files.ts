/**
 * Files of a node's identity in its data directory: `ca.crt` (pinned root), `node.crt`,
 * `node.key` (0600) and `node.json` (id, role, manager address). Secrets are written to a
 * temporary file with mode 0600, fsync'ed and renamed (adapters/fs/atomic.ts), so a crash never
 * leaves a half-written or world-readable key.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../fs/atomic.js';
import { MeshError } from '../../core/errors.js';
import { isJoinRole, type JoinRole } from '../../core/tokens/tokens.js';

export interface NodeIdentity {
  nodeId: string;
  role: JoinRole;
  /** host:port of the manager this node joined through. */
  managerAddr: string;
  caPem: string;
  certPem: string;
  keyPem: string;
}

export const IDENTITY_FILES = { ca: 'ca.crt', cert: 'node.crt', key: 'node.key', meta: 'node.json' } as const;

export function saveNodeIdentity(dataDir: string, id: NodeIdentity): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(dataDir, IDENTITY_FILES.key), id.keyPem, 0o600);
  writeFileAtomic(join(dataDir, IDENTITY_FILES.cert), id.certPem, 0o644);
  writeFileAtomic(join(dataDir, IDENTITY_FILES.ca), id.caPem, 0o644);
  writeFileAtomic(join(dataDir, IDENTITY_FILES.meta), `${JSON.stringify({ nodeId: id.nodeId, role: id.role, managerAddr: id.managerAddr }, null, 2)}\n`, 0o644);
}

export function hasNodeIdentity(dataDir: string): boolean {
  return existsSync(join(dataDir, IDENTITY_FILES.meta));
}

export function loadNodeIdentity(dataDir: string): NodeIdentity {
  const read = (f: string): string => {
    try {
      return readFileSync(join(dataDir, f), 'utf8');
    } catch (e) {
      throw new MeshError('MESHD_NOT_FOUND', `node identity file ${join(dataDir, f)} is missing: this node has not joined a cluster`, undefined, { cause: e });
    }
  };
  let meta: { nodeId?: unknown; role?: unknown; managerAddr?: unknown };
  try {
    meta = JSON.parse(read(IDENTITY_FILES.meta)) as typeof meta;
  } catch (e) {
    if (e instanceof MeshError) throw e;
    throw new MeshError('MESHD_BAD_CONFIG', `${join(dataDir, IDENTITY_FILES.meta)} is not valid JSON`);
  }
  if (typeof meta.nodeId !== 'string' || !isJoinRole(meta.role) || typeof meta.managerAddr !== 'string') {
    throw new MeshError('MESHD_BAD_CONFIG', `${join(dataDir, IDENTITY_FILES.meta)} is malformed`);
  }
  return { nodeId: meta.nodeId, role: meta.role, managerAddr: meta.managerAddr, caPem: read(IDENTITY_FILES.ca), certPem: read(IDENTITY_FILES.cert), keyPem: read(IDENTITY_FILES.key) };
}
