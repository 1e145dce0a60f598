/**
 * Which manager schedules. With the embedded store there is one manager and it always
 * leads; with etcd, managers campaign through etcd's election and exactly one leads.
 * A leader that loses its lease is told at once (it must stop scheduling) and campaigns
 * again after `retryMs`.
 */
import { MeshError, toMeshError } from '../core/errors.js';
import type { EtcdStore, LeaderCampaign } from '../adapters/store/etcd.js';
import type { LeaderFence, Store } from '../adapters/store/store.js';
import { KEYS, type ManagedNode } from './model.js';

/** Who leads: the manager's node id and its API address (host:port), when known. */
export interface LeaderInfo {
  nodeId: string;
  addr: string | undefined;
}

/**
 * The value a manager campaigns with: `<nodeId>@<host:port>`, so followers can tell
 * clients where the leader's API is without another lookup. A bare node id (older
 * candidates, tests) parses with no address.
 */
export function candidateValue(nodeId: string, addr: string | undefined): string {
  return addr ? `${nodeId}@${addr}` : nodeId;
}

export function parseCandidate(v: string | undefined): LeaderInfo | undefined {
  if (!v) return undefined;
  const at = v.indexOf('@');
  return at < 0 ? { nodeId: v, addr: undefined } : { nodeId: v.slice(0, at), addr: v.slice(at + 1) || undefined };
}

export interface Leadership {
  isLeader(): boolean;
  /** The current leader as the store sees it (a store read; undefined: none elected). */
  leader(): Promise<LeaderInfo | undefined>;
  /** Called with the new state on every change; returns an unsubscribe function. */
  onChange(cb: (leader: boolean) => void): () => void;
  /**
   * The current term's write fence (etcd: election key + create revision); undefined for a
   * sole manager, which needs none, and while not leading.
   */
  fence(): LeaderFence | undefined;
  /**
   * A fenced write was refused (this manager was deposed without noticing): stop leading at
   * once, give up the candidacy and campaign again. No-op for a sole manager.
   */
  stepDown(reason: Error): void;
  stop(): Promise<void>;
}

/** A single manager: leader from the start, forever. */
export function soleLeadership(self?: LeaderInfo): Leadership {
  return {
    isLeader: () => true, leader: () => Promise.resolve(self), onChange: () => () => undefined, fence: () => undefined,
    stepDown: () => undefined, stop: () => Promise.resolve(),
  };
}

/** Not leading, not campaigning (an etcd manager before its campaign starts). */
export function followerLeadership(): Leadership {
  return {
    isLeader: () => false, leader: () => Promise.resolve(undefined), onChange: () => () => undefined, fence: () => undefined,
    stepDown: () => undefined, stop: () => Promise.resolve(),
  };
}

export function etcdLeadership(store: EtcdStore, candidate: string, opts: { ttlSeconds?: number; retryMs?: number; onError?: (e: unknown) => void } = {}): Leadership {
  const subs = new Set<(leader: boolean) => void>();
  let leader = false;
  let stopped = false;
  let campaign: LeaderCampaign | undefined;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const set = (v: boolean): void => {
    if (v === leader) return;
    leader = v;
    for (const cb of [...subs]) cb(v);
  };
  /** Ends the campaign `c` (lost lease, or deposed) and campaigns again after retryMs. */
  const end = (c: LeaderCampaign, e: Error): void => {
    if (campaign !== c) return;
    opts.onError?.(e);
    set(false);
    campaign = undefined;
    if (!stopped) retry = setTimeout(run, opts.retryMs ?? 1000);
  };
  const run = (): void => {
    if (stopped) return;
    const c: LeaderCampaign = store.campaign(candidate, {
      ttlSeconds: opts.ttlSeconds,
      onLost: (e) => end(c, e),
    });
    campaign = c;
    void c.elected().then(() => {
      if (campaign === c && !stopped) set(true);
    });
  };
  run();
  return {
    isLeader: () => leader,
    leader: async () => parseCandidate(await store.leader()),
    onChange(cb) {
      subs.add(cb);
      return () => subs.delete(cb);
    },
    fence: () => (leader ? campaign?.fence() : undefined),
    stepDown(reason) {
      const c = campaign;
      if (!c) return;
      end(c, reason);
      // The lease is most likely gone already; if not, revoking it lets the real leader (or
      // the next candidate) proceed at once instead of after the TTL.
      void c.resign().catch((e: unknown) => opts.onError?.(e));
    },
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      const c = campaign;
      campaign = undefined;
      set(false);
      await c?.resign().catch((e: unknown) => opts.onError?.(e));
    },
  };
}

/**
 * The refusal of a write on a manager that does not lead: MESHD_NOT_LEADER naming the
 * leader by hostname (its node record) and API address, details `{ reason: 'not-leader',
 * leader: addr | null, leaderId, leaderName }`. `what` names the refused request.
 */
export async function notLeaderError(l: Leadership, store: Store, selfId: string, what: string): Promise<MeshError> {
  let info: LeaderInfo | undefined;
  let why = 'no leader is elected yet';
  try {
    info = await l.leader();
  } catch (e) {
    why = `the leader is unknown (${toMeshError(e).message})`;
  }
  if (info?.nodeId === selfId) {
    // The store still names us: a term that just ended, its election key not yet gone.
    info = undefined;
    why = 'its own leadership term just ended';
  }
  const hostname = info ? (await store.get<ManagedNode>(KEYS.node(info.nodeId)).catch(() => undefined))?.value.hostname : undefined;
  const name = info ? `${hostname ?? `node ${info.nodeId.slice(0, 12)}`}${info.addr ? ` at ${info.addr}` : ''}` : '';
  return new MeshError('MESHD_NOT_LEADER', info
    ? `this manager is not the leader: send ${what} to the leader, ${name}`
    : `this manager is not the leader and ${why}: retry shortly`,
  { reason: 'not-leader', leader: info?.addr ?? null, leaderId: info?.nodeId ?? null, leaderName: hostname ?? null });
}

/**
 * A fenced write was refused: the manager lost leadership without noticing. It stops
 * leading now (the control plane drops its update machines through the leadership change)
 * and campaigns again. Ignored: other errors; a manager that already noticed (not leading,
 * maybe campaigning again); a refusal of an older term's fence while a newer term leads.
 */
export function stepDownIfDeposed(l: Leadership, e: unknown): void {
  if (!(e instanceof MeshError) || e.code !== 'MESHD_NOT_LEADER' || e.details?.reason !== 'deposed') return;
  if (!l.isLeader()) return;
  const refused = e.details.fence as LeaderFence | undefined;
  const cur = l.fence();
  if (cur && refused && (cur.key !== refused.key || cur.createRevision !== refused.createRevision)) return;
  l.stepDown(e);
}
