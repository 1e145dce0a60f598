/**
 * An in-process manager for unit tests: `Manager.initCluster` on a store (MemoryStore by default),
 * its control plane registered and started with a fast tick, listening on 127.0.0.1 over real mTLS,
 * and workers joined with real worker tokens. No agents: tests play the nodes' dispatcher part
 * through `clients`. `close()` stops everything and removes the data directories.
 */
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { Store } from '../../src/adapters/store/store.js';
import { MemoryStore } from '../../src/adapters/store/memory.js';
import type { NodeIdentity } from '../../src/adapters/pki/files.js';
import { Manager, type InitClusterOptions } from '../../src/manager/manager.js';
import { ManagerClient } from '../../src/manager/client.js';
import { joinCluster } from '../../src/manager/join.js';
import { ControlPlane } from '../../src/manager/control/index.js';
import type { ControlPlaneOptions } from '../../src/manager/control/options.js';

export interface ManagerRigOptions {
  /** Data directories go under it (`<root>/m1`, `<root>/<worker>`); removed by close(). */
  root: string;
  store?: Store;
  /** Node liveness as gossip would say it (default: every node alive). */
  liveness?: ControlPlaneOptions['liveness'];
  gossipKeys?: InitClusterOptions['gossipKeys'];
  storeConfig?: InitClusterOptions['storeConfig'];
  /** Worker names to join with the worker token (default none). */
  workers?: readonly string[];
}

export interface ManagerRig {
  mgr: Manager;
  cp: ControlPlane;
  store: Store;
  /** host:port of the manager API. */
  addr: string;
  /** m1 (the manager) and every joined worker, by name. */
  ids: Record<string, NodeIdentity>;
  clients: Record<string, ManagerClient>;
  clientOf(id: NodeIdentity): ManagerClient;
  close(): Promise<void>;
}

export async function startManagerRig(o: ManagerRigOptions): Promise<ManagerRig> {
  const store = o.store ?? new MemoryStore();
  const mgr = await Manager.initCluster({
    dataDir: join(o.root, 'm1'), store, nodeName: 'm1', advertiseAddr: '127.0.0.1',
    ...(o.gossipKeys ? { gossipKeys: o.gossipKeys } : {}), ...(o.storeConfig ? { storeConfig: o.storeConfig } : {}),
  });
  const cp = new ControlPlane({ manager: mgr, liveness: o.liveness ?? (() => 'alive'), tickMs: 50, absentGraceMs: 60_000 });
  const close = async (): Promise<void> => {
    cp.stop();
    await mgr.close();
    rmSync(o.root, { recursive: true, force: true });
  };
  try {
    cp.register();
    const addr = `127.0.0.1:${(await mgr.listen('127.0.0.1', 0)).port}`;
    await cp.start();
    const clientOf = (id: NodeIdentity): ManagerClient => new ManagerClient(addr, { caPem: id.caPem, certPem: id.certPem, keyPem: id.keyPem });
    const ids: Record<string, NodeIdentity> = { m1: mgr.identity };
    for (const n of o.workers ?? []) {
      ids[n] = await joinCluster({ addr, token: await mgr.joinToken('worker'), nodeName: n, dataDir: join(o.root, n), advertiseAddr: '127.0.0.1' });
    }
    const clients: Record<string, ManagerClient> = {};
    for (const [n, id] of Object.entries(ids)) clients[n] = clientOf(id);
    return { mgr, cp, store, addr, ids, clients, clientOf, close };
  } catch (e) {
    await close();
    throw e;
  }
}
