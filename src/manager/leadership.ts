/**
 * Which manager schedules. With the embedded store there is one manager and it always
 * leads; with etcd, managers campaign through etcd's election and exactly one leads.
 * A leader that loses its lease is told at once (it must stop scheduling) and campaigns
 * again after `retryMs`.
 */
import type { EtcdStore, LeaderCampaign } from '../adapters/store/etcd.js';

export interface Leadership {
  isLeader(): boolean;
  /** Called with the new state on every change; returns an unsubscribe function. */
  onChange(cb: (leader: boolean) => void): () => void;
  stop(): Promise<void>;
}

/** A single manager: leader from the start, forever. */
export function soleLeadership(): Leadership {
  return { isLeader: () => true, onChange: () => () => undefined, stop: () => Promise.resolve() };
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
  const run = (): void => {
    if (stopped) return;
    const c = store.campaign(candidate, {
      ttlSeconds: opts.ttlSeconds,
      onLost: (e) => {
        if (campaign !== c) return;
        opts.onError?.(e);
        set(false);
        campaign = undefined;
        if (!stopped) retry = setTimeout(run, opts.retryMs ?? 1000);
      },
    });
    campaign = c;
    void c.elected().then(() => {
      if (campaign === c && !stopped) set(true);
    });
  };
  run();
  return {
    isLeader: () => leader,
    onChange(cb) {
      subs.add(cb);
      return () => subs.delete(cb);
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
