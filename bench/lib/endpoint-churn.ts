/**
 * Endpoint churn for the convergence bench (issue 18 item 1): real endpoint records of a synthetic set of
 * tasks, added and removed in a service's gossip table at a target rate, so every node's LB, DNS, overlay and
 * convergence receipts work through them exactly as through a real task's records. Going through the
 * manager (`service scale`) reached only ~3.6 changes/s (each call is a process, a commit, a schedule and a
 * task start); this writes the table directly through the lab nodes' control sockets (POST
 * /v1/gossip/tables: the operators' and tests' table write, on the local admin socket only — nothing new
 * in the agent).
 *
 * One change = one record added or one removed. Records are written on several nodes (each owns what it
 * writes, as a node owns its tasks' records); up to `pool` live at once, then the oldest goes next, so in
 * steady state adds and removes alternate. The rate actually reached is reported, never assumed; every
 * failed write is counted and its first messages kept (never dropped silently).
 */
import type { ApiClient } from '../../src/adapters/api/client.js';
import type { EndpointEncoding, EndpointRecord } from '../../src/core/endpoints.js';
import { ENDPOINT_TABLE, encodeEndpoint } from '../../src/core/endpoints.js';
import { macFromIp } from '../../src/core/ipam/addr.js';

export interface ChurnWriter {
  node: string;
  /** The node's underlay address (the record's VXLAN destination). */
  nodeIp: string;
  client: ApiClient;
}

export interface ChurnOptions {
  writers: readonly ChurnWriter[];
  /** A real record of the service the synthetic tasks belong to (its serviceId, VIP, network, ports). */
  template: EndpointRecord;
  ratePerS: number;
  /** Synthetic task i's address (inside the network's subnet, clear of what IPAM hands out). */
  ipOf(i: number): string;
  /** Live records at most (default 20). */
  pool?: number;
  /**
   * Writes in flight at most (default: the rate × 0.5 s, at least 2 per writer). The rate reached is
   * at most inflight ÷ a write's round trip, and the round trip is mostly the loaded machine's
   * scheduling delay (N=3 at load 15: p50 65 ms, p99 0.5 s): the old 2 per writer capped 100/s churn at
   * 7–25/s at load 30–40, with the agents mostly idle. Bounded all the same: the generator never queues
   * more than this on the nodes, and a write that fails is counted, not retried.
   */
  inflight?: number;
  /**
   * How records are written (default 'json'): 'compact' as the lab's agents write theirs once every node on the
   * network reads compact records (src/agent/worker/mesh.ts), sent as `valueBase64`.
   */
  encoding?: EndpointEncoding;
}

export interface ChurnReport {
  /** Changes written (acknowledged by the node's API). */
  changes: number;
  seconds: number;
  ratePerS: number;
  errors: number;
  firstErrors: string[];
  /** Failed writes by kind: the error's code and, for an unreachable agent, its cause (timeout / ECONNRESET / …). */
  errorKinds: Record<string, number>;
  /** Acknowledged writes' round trips (request → the node's answer), ms: where the generator's time goes. */
  writeMs: { p50: number | null; p99: number | null; max: number | null };
  /** Writes in flight at most (the cap the rate is bounded by: cap / round trip). */
  inflight: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A failed write's kind: its code, and the cause of an unreachable agent (`MESHD_AGENT_UNREACHABLE (ECONNRESET)`). */
export function errorKind(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const m = err.message ?? '';
  const cause = /did not answer in time/.test(m) ? 'timeout' : /\bE[A-Z]{4,}\b/.exec(m)?.[0];
  return cause ? `${err.code ?? 'error'} (${cause})` : (err.code ?? 'error');
}

/** Nearest-rank percentile p (0–100] of a non-empty list. */
function percentileOf(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/**
 * The synthetic record of task i written by `w` (pure; exported for the unit test). Its `node` is a name no
 * agent has (`<writer>-churn`): every node, the writer included, then treats it as a remote task's record
 * (a backend, a name, an FDB entry towards the writer's underlay address), as it would a task on another
 * host. Named after the writer itself, the writer's LB took it for a local task and tried to program its
 * (nonexistent) namespace on every change.
 */
export function churnRecord(t: EndpointRecord, i: number, ip: string, w: { node: string; nodeIp: string }): EndpointRecord {
  return { ...t, taskId: `bench-churn-${i}`, taskName: `${t.serviceName}.bc${i}`, ip, mac: macFromIp(ip), node: `${w.node}-churn`, nodeIp: w.nodeIp, state: 'running', aliases: [] };
}

/** Starts writing at once; `stop()` stops, waits for writes in flight, removes what is still live and reports. */
export function startEndpointChurn(o: ChurnOptions): { stop: () => Promise<ChurnReport> } {
  const pool = o.pool ?? 20;
  const maxInflight = o.inflight ?? Math.max(2 * o.writers.length, Math.ceil(o.ratePerS * 0.5));
  const live: { key: string; w: ChurnWriter }[] = [];
  let next = 0;
  let issued = 0;
  let changes = 0;
  let errors = 0;
  const firstErrors: string[] = [];
  let inflight = 0;
  let stopped = false;
  const began = Date.now();
  const lat: number[] = [];
  const errorKinds: Record<string, number> = {};
  const fail = (what: string, e: unknown) => {
    errors++;
    const kind = errorKind(e);
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    if (firstErrors.length < 5) firstErrors.push(`${what}: ${(e as Error).message}`);
  };
  const write = async (w: ChurnWriter, body: Record<string, unknown>) => {
    const t0 = performance.now();
    await w.client.call('POST', '/v1/gossip/tables', { network: o.template.network, table: ENDPOINT_TABLE, ...body });
    lat.push(performance.now() - t0);
  };
  let adding = 0;
  const one = async (): Promise<void> => {
    // adds in flight count towards the pool: with many writes in flight, live records stay ≤ pool
    if (live.length > 0 && live.length + adding >= pool) {
      const old = live.shift()!;
      try {
        await write(old.w, { key: old.key, delete: true });
        changes++;
      } catch (e) {
        fail(`remove ${old.key} on ${old.w.node}`, e);
      }
      return;
    }
    const i = next++;
    const w = o.writers[i % o.writers.length]!;
    const rec = churnRecord(o.template, i, o.ipOf(i), w);
    adding++;
    try {
      await write(w, o.encoding === 'compact'
        ? { key: rec.taskId, valueBase64: Buffer.from(encodeEndpoint(rec, 'compact')).toString('base64') }
        : { key: rec.taskId, value: JSON.stringify(rec) });
      live.push({ key: rec.taskId, w });
      changes++;
    } catch (e) {
      fail(`add ${rec.taskId} on ${w.node}`, e);
    } finally {
      adding--;
    }
  };
  const loop = (async () => {
    while (!stopped) {
      const due = Math.floor(((Date.now() - began) / 1000) * o.ratePerS) - issued;
      for (let k = 0; k < due && inflight < maxInflight; k++) {
        issued++;
        inflight++;
        void one().finally(() => inflight--);
      }
      await sleep(5);
    }
    while (inflight > 0) await sleep(5);
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
      const seconds = (Date.now() - began) / 1000;
      const q = (p: number) => (lat.length ? Math.round(percentileOf(lat, p)) : null);
      const report: ChurnReport = { changes, seconds, ratePerS: Math.round((changes / seconds) * 10) / 10, errors, firstErrors, errorKinds, writeMs: { p50: q(50), p99: q(99), max: q(100) }, inflight: maxInflight };
      for (const l of live.splice(0)) await write(l.w, { key: l.key, delete: true }).catch((e: unknown) => fail(`cleanup ${l.key}`, e));
      report.errors = errors;
      return report;
    },
  };
}
