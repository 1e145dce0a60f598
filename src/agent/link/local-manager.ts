/**
 * The manager on a manager node: its store, API server and control plane (scheduler, orchestrator,
 * rolling updates), started by the link when this node's identity holds a store (or at `cluster
 * init`). The manager code is imported here lazily, so a worker never loads it (issue 16 §3). The
 * control plane reads node liveness from this node's gossip view: a node the gossip declares dead
 * for `downGraceMs` is down for the scheduler.
 */
import type { Logger } from '../../adapters/logger.js';
import type { Clock } from '../../core/clock.js';
import { toMeshError } from '../../core/errors.js';
import type { ControlPlane } from '../../manager/control/index.js';
import { managerSubsystem, type ManagerSubsystem, type StoreConfig } from '../../manager/link.js';
import type { GossipSubsystem } from '../gossip/gossip.js';
import type { ClusterGossipKeys } from './gossip-keys.js';

export interface LocalManagerOptions {
  dir: string;
  nodeName: string;
  advertiseAddr: string;
  listenPort: number;
  store: StoreConfig | undefined;
  /** `cluster init`: create the cluster (first manager); else join the store the identity names. */
  init: boolean;
  gossip: GossipSubsystem;
  gossipKeys: ClusterGossipKeys | undefined;
  clock: Clock;
  downGraceMs: number;
  log: Logger;
  /** Leadership changed (wall-clock ms when this manager became the leader, or null). */
  onLeader(since: number | null): void;
}

export interface LocalManager {
  mgr: ManagerSubsystem;
  control: ControlPlane;
  /** This manager's API address as peers dial it (`host:port`, IPv6 in brackets). */
  addr: string;
}

/** Starts the manager and its control plane; both are stopped by `stopLocalManager`. */
export async function startLocalManager(o: LocalManagerOptions): Promise<LocalManager> {
  const { ControlPlane } = await import('../../manager/control/index.js');
  let control: ControlPlane | undefined;
  const mgr = managerSubsystem({
    dataDir: o.dir, listenHost: o.advertiseAddr, listenPort: o.listenPort,
    storeConfig: o.store, advertiseAddr: o.advertiseAddr,
    ...(o.init ? { init: { nodeName: o.nodeName, advertiseAddr: o.advertiseAddr, gossipKeys: o.gossipKeys?.forInit() } } : {}),
    onInternalError: (e) => o.log.error({ err: e }, 'manager internal error'),
    configure: (m) => {
      control = new ControlPlane({
        manager: m,
        liveness: (host) => (host === o.nodeName ? 'alive' : o.gossip.core.member(host)?.state),
        stateAge: (host) => {
          const member = o.gossip.core.member(host);
          return member ? o.clock.now() - member.stateChangeAt : undefined;
        },
        downGraceMs: o.downGraceMs,
        isLeader: () => m.isLeader(),
        onError: (e) => o.log.error({ err: e }, 'control plane step failed'),
        onResume: (ids) => o.log.info({ services: ids }, 'resumed rolling updates of the previous leader'),
      });
      control.register();
    },
    onLeadershipChange: (leader) => {
      o.onLeader(leader ? Date.now() : null);
      o.log.info({ leader }, leader ? 'this manager is now the leader' : 'this manager is no longer the leader');
      control?.leadershipChanged(leader);
    },
    onLeadershipError: (e) => o.log.warn({ err: toMeshError(e).message }, 'leadership lost or campaign failed; campaigning again'),
  });
  await mgr.start();
  try {
    await control!.start();
  } catch (e) {
    control?.stop();
    await mgr.stop();
    throw e;
  }
  const port = mgr.port()!;
  return { mgr, control: control!, addr: `${o.advertiseAddr.includes(':') ? `[${o.advertiseAddr}]` : o.advertiseAddr}:${port}` };
}
