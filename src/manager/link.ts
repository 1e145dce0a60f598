/**
 * What the agent's cluster link (src/agent/manager-link.ts) needs of the manager, without
 * loading the manager (issue 16 §3: fast start). Every agent imports this module; only a node
 * that hosts a manager, or joins, or renews its certificate, pays for the manager, the stores
 * (etcd's gRPC stack, better-sqlite3) and x509 (@peculiar/x509 and its ASN.1 stack): they are
 * reached through dynamic `import()` here, which the bundle (scripts/bundle.mjs) turns into
 * chunk files read only then. Same names and signatures as src/manager/index.ts, which
 * stays the full, eager API for tests and the manager itself.
 */
import { X509Certificate } from 'node:crypto';
import { MeshError } from '../core/errors.js';
import type { NodeIdentity } from '../adapters/pki/files.js';
import { renewalDue } from '../adapters/pki/renewal.js';
import type { JoinOptions } from './join.js';
import type { ManagerSubsystem, ManagerSubsystemOptions } from './index.js';
import type { StoreConfig } from './store-config.js';

export { ManagerPool } from './pool.js';
export {
  STORE_CONFIG_FILE, checkStoreConfig, hostsManagerStore, loadStoreConfig, saveStoreConfig, type StoreConfig,
} from './store-config.js';
export type { ManagerSubsystem, ManagerSubsystemOptions } from './index.js';

/** `managerSubsystem` of src/manager/index.ts, loaded at `start()`. */
export function managerSubsystem(o: ManagerSubsystemOptions): ManagerSubsystem {
  let inner: ManagerSubsystem | undefined;
  return {
    name: 'manager',
    manager: () => inner?.manager(),
    port: () => inner?.port(),
    leadership: () => inner?.leadership(),
    async start() {
      const m = await import('./index.js');
      inner = m.managerSubsystem(o);
      await inner.start();
    },
    async stop() {
      await inner?.stop();
    },
  };
}

export async function joinCluster(o: JoinOptions): Promise<NodeIdentity & { store?: StoreConfig; gossipKeys?: string[] }> {
  return (await import('./join.js')).joinCluster(o);
}

export async function renewNodeCertificate(dataDir: string, timeoutMs?: number, managerAddr?: string): Promise<NodeIdentity & { store?: StoreConfig }> {
  return (await import('./join.js')).renewNodeCertificate(dataDir, timeoutMs, managerAddr);
}

/**
 * Whether the node certificate is due for renewal (join.ts's rule), read with Node's own X.509
 * parser: the check runs on a timer on every node and must not load @peculiar/x509 for it.
 */
export function certificateRenewalDue(identity: NodeIdentity, now: Date, jitter = 0): boolean {
  let c: X509Certificate;
  try {
    c = new X509Certificate(identity.certPem);
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `certificate is not a valid PEM certificate: ${(e as Error).message}`);
  }
  return renewalDue(Date.parse(c.validFrom), Date.parse(c.validTo), now.getTime(), jitter);
}
