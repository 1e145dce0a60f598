/**
 * Composition of the manager for the agent (src/agent calls this; no process globals
 * here). `managerSubsystem` opens the store (sqlite in the data directory by default, or
 * a given one), initializes the cluster if asked and nothing exists yet, and serves the
 * manager API on listen host:port while the agent runs.
 */
import type { MeshError } from '../core/errors.js';
import { formatHostPort } from '../core/hostport.js';
import type { Subsystem } from '../adapters/api/subsystem.js';
import { hasNodeIdentity } from '../adapters/pki/files.js';
import type { EtcdStore } from '../adapters/store/etcd.js';
import type { Store } from '../adapters/store/store.js';
import { DEFAULT_MANAGER_PORT, Manager } from './manager.js';
import { candidateValue, etcdLeadership, followerLeadership, soleLeadership, type Leadership } from './leadership.js';
import { openStore, type StoreConfig } from './store-config.js';

export { Manager, DEFAULT_MANAGER_PORT } from './manager.js';
export { ManagerClient, parseManagerAddr } from './client.js';
export { ManagerPool, notLeaderTarget, nextManager } from './pool.js';
export { joinCluster, renewNodeCertificate, certificateRenewalDue } from './join.js';
export { soleLeadership, etcdLeadership, followerLeadership, candidateValue, parseCandidate, type Leadership, type LeaderInfo } from './leadership.js';
export type { Access, ManagerHandler, RequestContext } from './server.js';
export {
  STORE_FILE, STORE_CONFIG_FILE, checkStoreConfig, hostsManagerStore, loadStoreConfig, parseEndpoints, saveStoreConfig,
  type StoreConfig,
} from './store-config.js';

export interface ManagerSubsystemOptions {
  dataDir: string;
  /** Listen address of the manager API (e.g. the advertise IP, or 0.0.0.0). */
  listenHost: string;
  listenPort?: number;
  /** Create a cluster if the data directory holds none (`cluster init`). */
  init?: { nodeName: string; advertiseAddr: string; /** The cluster's gossip keyring (base64, primary first), stored at init. */ gossipKeys?: string[] };
  /** Store factory; default: what `storeConfig` names. */
  openStore?: () => Promise<Store> | Store;
  /** The store to run on; default sqlite at <dataDir>/state.db. */
  storeConfig?: StoreConfig;
  /**
   * This manager's advertised IP: its API address `<ip>:<port>` is published in its node
   * record (agents learn the managers from it) and in its leader candidacy.
   */
  advertiseAddr?: string;
  /** etcd leader lease TTL (s): a killed leader is replaced within about this long. Default 5. */
  leaderTtlSeconds?: number;
  onInternalError?: (e: MeshError) => void;
  /** Called once the manager exists, before listening: add routes here. */
  configure?: (m: Manager) => void;
  /** Called with every leadership change (etcd); a sole manager leads from the start and is not called. */
  onLeadershipChange?: (leader: boolean) => void;
  /** Leadership errors (lost lease, etcd unreachable): the manager campaigns again by itself. */
  onLeadershipError?: (e: unknown) => void;
}

export interface ManagerSubsystem extends Subsystem {
  /** The running manager (after start). */
  manager(): Manager | undefined;
  /** Bound port (after start). */
  port(): number | undefined;
  /** Who leads (after start). */
  leadership(): Leadership | undefined;
}

export function managerSubsystem(o: ManagerSubsystemOptions): ManagerSubsystem {
  let manager: Manager | undefined;
  let store: Store | undefined;
  let port: number | undefined;
  let leadership: Leadership | undefined;
  const cfg: StoreConfig = o.storeConfig ?? { kind: 'sqlite' };
  return {
    name: 'manager',
    manager: () => manager,
    port: () => port,
    leadership: () => leadership,
    async start() {
      store = await (o.openStore ?? (() => openStore(o.dataDir, cfg)))();
      try {
        const listenPort = o.listenPort ?? DEFAULT_MANAGER_PORT;
        manager = o.init && !hasNodeIdentity(o.dataDir)
          ? await Manager.initCluster({ dataDir: o.dataDir, store, nodeName: o.init.nodeName, advertiseAddr: o.init.advertiseAddr, gossipKeys: o.init.gossipKeys, port: listenPort, onInternalError: o.onInternalError, storeConfig: cfg })
          : await Manager.open({ dataDir: o.dataDir, store, onInternalError: o.onInternalError, storeConfig: cfg });
        o.configure?.(manager);
        const m = manager;
        if (store.backend === 'etcd') {
          // Campaign only once the API can answer (port known); until elected this manager is a follower.
          m.setLeadership(followerLeadership());
        }
        port = (await m.listen(o.listenHost, listenPort)).port;
        if (listenPort === 0 && o.init) {
          // An ephemeral port (tests): record the real one so local clients find the manager.
          m.setManagerAddr(o.dataDir, formatHostPort(o.init.advertiseAddr, port));
        }
        const adv = o.advertiseAddr ?? o.init?.advertiseAddr;
        const apiAddr = adv ? `${adv.includes(':') ? `[${adv}]` : adv}:${port}` : undefined;
        if (apiAddr) await m.publishManagerAddr(apiAddr);
        leadership = store.backend === 'etcd'
          ? etcdLeadership(store as EtcdStore, candidateValue(m.identity.nodeId, apiAddr), { ttlSeconds: o.leaderTtlSeconds, onError: o.onLeadershipError })
          : soleLeadership({ nodeId: m.identity.nodeId, addr: apiAddr });
        if (o.onLeadershipChange) leadership.onChange(o.onLeadershipChange);
        m.setLeadership(leadership);
      } catch (e) {
        await leadership?.stop().catch(() => undefined);
        await manager?.close().catch(() => undefined);
        await store.close();
        leadership = undefined;
        store = undefined;
        manager = undefined;
        throw e;
      }
    },
    async stop() {
      // Resign first: another manager takes over at once instead of after the lease TTL.
      await leadership?.stop().catch((e: unknown) => o.onLeadershipError?.(e));
      await manager?.close();
      await store?.close();
      leadership = undefined;
      manager = undefined;
      store = undefined;
    },
  };
}
