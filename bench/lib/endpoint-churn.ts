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
import type { EndpointRecord } from '../../src/core/endpoints.js';
import { ENDPOINT_TABLE } from '../../src/core/endpoints.js';
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
  /** Writes in flight at most (default 2 per writer): the generator never queues more than the nodes answer. */
  inflight?: number;
}

export interface ChurnReport {
  /** Changes written (acknowledged by the node's API). */
  changes: number;
  seconds: number;
  ratePerS: number;
  errors: number;
  firstErrors: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const maxInflight = o.inflight ?? 2 * o.writers.length;
  const live: { key: string; w: ChurnWriter }[] = [];
  let next = 0;
  let issued = 0;
  let changes = 0;
  let errors = 0;
  const firstErrors: string[] = [];
  let inflight = 0;
  let stopped = false;
  const began = Date.now();
  const fail = (what: string, e: unknown) => {
    errors++;
    if (firstErrors.length < 5) firstErrors.push(`${what}: ${(e as Error).message}`);
  };
  const write = async (w: ChurnWriter, body: Record<string, unknown>) => w.client.call('POST', '/v1/gossip/tables', { network: o.template.network, table: ENDPOINT_TABLE, ...body });
  const one = async (): Promise<void> => {
    if (live.length >= pool) {
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
    try {
      await write(w, { key: rec.taskId, value: JSON.stringify(rec) });
      live.push({ key: rec.taskId, w });
      changes++;
    } catch (e) {
      fail(`add ${rec.taskId} on ${w.node}`, e);
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
      const report = { changes, seconds, ratePerS: Math.round((changes / seconds) * 10) / 10, errors, firstErrors };
      for (const l of live.splice(0)) await write(l.w, { key: l.key, delete: true }).catch((e: unknown) => fail(`cleanup ${l.key}`, e));
      report.errors = errors;
      return report;
    },
  };
}
