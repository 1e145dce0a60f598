/**
 * Registry replication for the DNS worker processes (issue 6, "scale across cores").
 *
 * The agent owns the one authoritative DnsRegistry (fed by gossip). Each extra worker process that shares
 * the node's DNS sockets keeps a replica: the agent sends a full snapshot (plain JSON data, structured-clone
 * safe) after a change and the worker applies it as a diff, so its generation — and therefore its answer
 * cache — moves only when something really changed. Full snapshots rather than deltas: a snapshot is
 * O(entries) (≈ 100 bytes per entry; 10⁴ names ≈ 1 MB) and is sent at most once per coalescing interval,
 * while deltas would need ordering/resync logic for a replica that restarts or misses a message.
 *
 * Also the small formulas of the worker layout (table-tested in test/unit/dns/snapshot.test.ts).
 */
import type { DnsRegistry, ServiceMode, TaskEntry } from './registry.js';

export interface ServiceSnap {
  readonly name: string;
  readonly network: string;
  readonly mode: ServiceMode;
  readonly vip?: string;
  readonly vip6?: string;
  readonly aliases: readonly string[];
  readonly owner?: string;
}

/** A registry task entry as carried to worker processes (their own clock stamps `updatedAt`). */
export type TaskSnap = Omit<TaskEntry, 'updatedAt'>;

export interface RegistrySnapshot {
  /** The source registry's generation when the snapshot was taken (diagnostics only). */
  readonly generation: number;
  readonly services: readonly ServiceSnap[];
  readonly tasks: readonly TaskSnap[];
}

/** Every entry of `reg` as plain data. */
export function snapshotRegistry(reg: DnsRegistry): RegistrySnapshot {
  const services: ServiceSnap[] = [];
  const tasks: TaskSnap[] = [];
  for (const net of reg.networks()) {
    for (const s of reg.services(net)) {
      services.push({ name: s.name, network: s.network, mode: s.mode, ...(s.vip !== undefined ? { vip: s.vip } : {}), ...(s.vip6 !== undefined ? { vip6: s.vip6 } : {}), aliases: [...s.aliases], ...(s.owner !== undefined ? { owner: s.owner } : {}) });
    }
    for (const t of reg.tasks(net)) tasks.push({ name: t.name, network: t.network, service: t.service, ip: t.ip, ip6: t.ip6, healthy: t.healthy, owner: t.owner, slot: t.slot, ports: t.ports.map((p) => ({ ...p })) });
  }
  return { generation: reg.generation, services, tasks };
}

/**
 * Makes `reg` hold exactly the snapshot's entries: upserts every entry (a no-op when unchanged) and
 * removes the entries the snapshot no longer has. Returns true when the registry changed. Entries that
 * fail validation throw (MESHD_BAD_ARGUMENT) — they came from a registry that validated them already.
 */
export function applySnapshot(reg: DnsRegistry, snap: RegistrySnapshot, now: number): boolean {
  const before = reg.generation;
  const keepSvc = new Set<string>();
  const keepTask = new Set<string>();
  for (const s of snap.services) {
    reg.upsertService({ name: s.name, network: s.network, mode: s.mode, ...(s.vip !== undefined ? { vip: s.vip } : {}), ...(s.vip6 !== undefined ? { vip6: s.vip6 } : {}), aliases: s.aliases, ...(s.owner !== undefined ? { owner: s.owner } : {}) }, now);
    keepSvc.add(`${s.network}\0${s.name}`);
  }
  for (const t of snap.tasks) {
    reg.upsertTask({ name: t.name, network: t.network, service: t.service, ip: t.ip, ...(t.ip6 !== undefined ? { ip6: t.ip6 } : {}), healthy: t.healthy, owner: t.owner, ...(t.slot !== undefined ? { slot: t.slot } : {}), ports: t.ports }, now);
    keepTask.add(`${t.network}\0${t.name}`);
  }
  for (const net of reg.networks()) {
    for (const s of reg.services(net)) if (!keepSvc.has(`${s.network}\0${s.name}`)) reg.removeService(s.network, s.name);
    for (const t of reg.tasks(net)) if (!keepTask.has(`${t.network}\0${t.name}`)) reg.removeTask(t.network, t.name);
  }
  return reg.generation !== before;
}

/**
 * Default number of processes serving the node's DNS sockets for `cpus` CPUs: 1 up to 2 CPUs, then one
 * per CPU, at most 4.
 *
 * Why 1 on 2 CPUs: every process reads the same socket, and the kernel wakes every reader blocked on it
 * for each datagram (no EPOLLEXCLUSIVE / SO_REUSEPORT in Node 20's dgram) — all but one find nothing. At the
 * rates a node's tasks actually ask, each query then pays one wakeup per process: bench/dns.ts at 5000 qps,
 * both layouts unpinned in the same runs, 2 CPUs: one process spent less CPU per query in 8 of 10 comparisons
 * (e.g. 44 vs 55 µs, 30 vs 46 µs) and had the better p99 in 9 of 10, the processes also competing with the
 * agent and the tasks for the same 2 cores. One
 * process serves ~50–60k qps from one core, far above what the tasks of one node ask. With more CPUs a
 * spare core absorbs the extra wakeups and more processes keep answering while the agent's loop is busy.
 * Capped at 4: each process costs ~40 MB of memory and its own answer cache.
 */
export function defaultDnsWorkers(cpus: number): number {
  if (!Number.isFinite(cpus) || cpus <= 2) return 1;
  return Math.min(4, Math.floor(cpus));
}

/**
 * Per-process bound on pending forwards when `workers` processes share a node-wide bound of `total`:
 * ⌈total / workers⌉, at least 1 — the node-wide figure can exceed `total` by at most workers − 1.
 */
export function perWorkerPendingBound(total: number, workers: number): number {
  return Math.max(1, Math.ceil(total / Math.max(1, workers)));
}
