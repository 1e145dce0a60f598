/**
 * `GET /v1/lb/status`: per namespace, what the LB wants (frontends tied to services and tasks)
 * next to what the kernel holds (Dataplane.readKernel), and the differences (compareKernel).
 * With a service filter, only that service's frontends are shown and compared.
 */
import type { Dataplane } from '../adapters/dataplane/types.js';
import { toMeshError } from '../core/errors.js';
import { compareKernel, expectedKernel, type KernelFrontend, type KernelLbState } from '../core/lb/kernel.js';
import { compile, type LbDesired } from '../core/lb/model.js';

export interface LbFrontendRow {
  key: string;
  service: string;
  serviceId: string;
  /** Desired backends: task id, address:port, state. */
  backends: Array<{ task: string; target: string; state: 'active' | 'draining'; local: boolean }>;
  /** What the kernel sends new connections to (null: frontend absent from the kernel). */
  kernel: string[] | null;
}

export interface LbNsStatus {
  netns: string;
  kind: 'task' | 'ingress' | 'host';
  task: string | null;
  lastApply: { mode: string; changed: number; frontends: number; durationMs: number; at: number | null } | null;
  error: string | null;
  conflicts: string[];
  frontends: LbFrontendRow[];
  drift: string[];
}

interface Entry {
  netns: string;
  kind: 'task' | 'ingress' | 'host';
  taskId: string | null;
  desired: LbDesired;
  conflicts: string[];
  last: { mode: string; changed: number; frontends: number; durationMs: number } | null;
  lastAt: number | null;
  error: string | null;
}

/** Rows of one namespace's desired state, optionally only one service (id or name). */
export function desiredRows(d: LbDesired, service?: string, nameOf: (serviceId: string) => string | undefined = () => undefined): LbFrontendRow[] {
  const rows: LbFrontendRow[] = [];
  for (const s of d.services) {
    if (service && s.id !== service && s.name !== service) continue;
    if (!s.vip) continue;
    for (const p of s.ports) {
      rows.push({
        key: `vip ${s.vip} ${p.proto} ${p.port}`, service: s.name, serviceId: s.id,
        backends: s.backends.map((b) => ({ task: b.id, target: `${b.ip}:${p.targetPort}`, state: b.state, local: b.local === true })), kernel: null,
      });
    }
  }
  for (const g of d.ingress) {
    const name = nameOf(g.service) ?? g.service;
    if (service && g.service !== service && name !== service) continue;
    rows.push({
      key: `ingress ${g.proto} ${g.publishedPort}`, service: name, serviceId: g.service,
      backends: g.backends.map((b) => ({ task: b.id, target: `${b.ip}:${g.targetPort}`, state: b.state, local: b.local === true })), kernel: null,
    });
  }
  return rows;
}

function only(k: KernelLbState, keys: Set<string> | null): KernelLbState {
  return keys ? { ...k, frontends: k.frontends.filter((f) => keys.has(f.key)) } : k;
}

export async function lbStatus(dp: Dataplane, e: Entry, service?: string, nameOf?: (serviceId: string) => string | undefined): Promise<LbNsStatus | null> {
  const rows = desiredRows(e.desired, service, nameOf);
  if (service && rows.length === 0) return null;
  const keys = service ? new Set(rows.map((r) => r.key)) : null;
  let drift: string[];
  let actual: KernelFrontend[] = [];
  let error = e.error;
  try {
    const kernel = await dp.readKernel({ netns: e.netns });
    actual = kernel.frontends;
    const want = expectedKernel(compile(e.desired), kernel.backend);
    drift = compareKernel(only(want, keys), only(kernel, keys));
  } catch (err) {
    drift = [`cannot read the kernel: ${toMeshError(err).message}`];
    error ??= toMeshError(err).message;
  }
  const byKey = new Map(actual.map((f) => [f.key, f]));
  for (const r of rows) {
    const f = byKey.get(r.key);
    r.kernel = f ? f.targets.map((t) => `${t.ip}:${t.port}`) : null;
  }
  return {
    netns: e.netns, kind: e.kind, task: e.taskId,
    lastApply: e.last ? { mode: e.last.mode, changed: e.last.changed, frontends: e.last.frontends, durationMs: Math.round(e.last.durationMs * 10) / 10, at: e.lastAt } : null,
    error, conflicts: e.conflicts, frontends: rows, drift,
  };
}
