/**
 * Composition of the manager for the agent (src/agent calls this; no process globals
 * here). `managerSubsystem` opens the store (sqlite in the data directory by default, or
 * a given one), initializes the cluster if asked and nothing exists yet, and serves the
 * manager API on listen host:port while the agent runs.
 */
import { join } from 'node:path';
import type { MeshError } from '../core/errors.js';
import type { Subsystem } from '../agent/agent.js';
import { hasNodeIdentity } from '../adapters/pki/files.js';
import { SqliteStore } from '../adapters/store/sqlite.js';
import type { Store } from '../adapters/store/store.js';
import { DEFAULT_MANAGER_PORT, Manager } from './manager.js';

export { Manager, DEFAULT_MANAGER_PORT } from './manager.js';
export { ManagerClient, parseManagerAddr } from './client.js';
export { joinCluster, renewNodeCertificate, certificateRenewalDue } from './join.js';
export { soleLeadership, etcdLeadership, type Leadership } from './leadership.js';
export type { Access, ManagerHandler, RequestContext } from './server.js';

export const STORE_FILE = 'state.db';

export interface ManagerSubsystemOptions {
  dataDir: string;
  /** Listen address of the manager API (e.g. the advertise IP, or 0.0.0.0). */
  listenHost: string;
  listenPort?: number;
  /** Create a cluster if the data directory holds none (`cluster init`). */
  init?: { nodeName: string; advertiseAddr: string };
  /** Store factory; default: sqlite at <dataDir>/state.db. */
  openStore?: () => Promise<Store> | Store;
  onInternalError?: (e: MeshError) => void;
  /** Called once the manager exists, before listening: add routes here. */
  configure?: (m: Manager) => void;
}

export interface ManagerSubsystem extends Subsystem {
  /** The running manager (after start). */
  manager(): Manager | undefined;
  /** Bound port (after start). */
  port(): number | undefined;
}

export function managerSubsystem(o: ManagerSubsystemOptions): ManagerSubsystem {
  let manager: Manager | undefined;
  let store: Store | undefined;
  let port: number | undefined;
  return {
    name: 'manager',
    manager: () => manager,
    port: () => port,
    async start() {
      store = await (o.openStore ?? (() => SqliteStore.open({ path: join(o.dataDir, STORE_FILE) })))();
      try {
        const listenPort = o.listenPort ?? DEFAULT_MANAGER_PORT;
        manager = o.init && !hasNodeIdentity(o.dataDir)
          ? await Manager.initCluster({ dataDir: o.dataDir, store, nodeName: o.init.nodeName, advertiseAddr: o.init.advertiseAddr, port: listenPort, onInternalError: o.onInternalError })
          : await Manager.open({ dataDir: o.dataDir, store, onInternalError: o.onInternalError });
        o.configure?.(manager);
        port = (await manager.listen(o.listenHost, listenPort)).port;
        if (listenPort === 0 && o.init) {
          // An ephemeral port (tests): record the real one so local clients find the manager.
          manager.setManagerAddr(o.dataDir, `${o.init.advertiseAddr}:${port}`);
        }
      } catch (e) {
        await store.close();
        store = undefined;
        manager = undefined;
        throw e;
      }
    },
    async stop() {
      await manager?.close();
      await store?.close();
      manager = undefined;
      store = undefined;
    },
  };
}
