/**
 * `GET /v1/lb/status`: per namespace, what the LB wants (frontends tied to services and tasks)
 * next to what the kernel holds (Dataplane.readKernel), and the differences (compareKernel).
 * With a service filter, only that service's frontends are shown and compared.
 */
import type { Dataplane } from '../../adapters/dataplane/types.js';
import { toMeshError } from '../../core/errors.js';
import { formatHostPort } from '../../core/hostport.js';
import { compareKernel, expectedKernel, type KernelFrontend, type KernelLbState } from '../../core/lb/kernel.js';
import { compile, type LbDesired } from '../../core/lb/model.js';
import { describeHeld, type HeldBackend } from '../../core/lb/overlay-gate.js';

import type { LbStats } from './types.js';

export type { LbFrontendRow, LbNsStatus } from '../../api/lb.js';
import type { LbFrontendRow, LbNsStatus } from '../../api/lb.js';

interface Entry {
  netns: string;
  kind: 'task' | 'ingress' | 'host';
  taskId: string | null;
  desired: LbDesired;
  conflicts: string[];
  held?: readonly HeldBackend[];
  last: { mode: string; changed: number; frontends: number; durationMs: number } | null;
  lastAt: number | null;
  error: string | null;
}

/** Rows of one namespace's desired state, optionally only one service (id or name). */
export function desiredRows(d: LbDesired, service?: string, nameOf: (serviceId: string) => string | undefined = () => undefined, held: readonly HeldBackend[] = []): LbFrontendRow[] {
  const rows: LbFrontendRow[] = [];
  const heldOf = (serviceId: string, targetPort: number) => held.filter((h) => h.service === serviceId).map((h) => ({ task: h.id, target: `${h.ip}:${targetPort}`, reason: h.reason }));
  for (const s of d.services) {
    if (service && s.id !== service && s.name !== service) continue;
    if (!s.vip) continue;
    for (const p of s.ports) {
      rows.push({
        key: `vip ${s.vip} ${p.proto} ${p.port}`, service: s.name, serviceId: s.id,
        backends: s.backends.map((b) => ({ task: b.id, target: `${b.ip}:${p.targetPort}`, state: b.state, local: b.local === true })), kernel: null,
        held: heldOf(s.id, p.targetPort),
      });
      // the IPv6 VIP of a dual-stack service: its frontend balances over the backends with an IPv6 address
      if (s.vip6 === undefined) continue;
      rows.push({
        key: `vip ${s.vip6} ${p.proto} ${p.port}`, service: s.name, serviceId: s.id,
        backends: s.backends.filter((b) => b.ip6 !== undefined).map((b) => ({ task: b.id, target: formatHostPort(b.ip6!, p.targetPort), state: b.state, local: b.local === true })), kernel: null,
        held: [],
      });
    }
  }
  for (const g of d.ingress) {
    const name = nameOf(g.service) ?? g.service;
    if (service && g.service !== service && name !== service) continue;
    rows.push({
      key: `ingress ${g.proto} ${g.publishedPort}`, service: name, serviceId: g.service,
      backends: g.backends.map((b) => ({ task: b.id, target: `${b.ip}:${g.targetPort}`, state: b.state, local: b.local === true })), kernel: null,
      held: heldOf(g.service, g.targetPort),
    });
  }
  return rows;
}

/** Only the frontends of `keys` (a service filter); stray kernel objects belong to no service, so they go too. */
function only(k: KernelLbState, keys: Set<string> | null): KernelLbState {
  return keys ? { backend: k.backend, frontends: k.frontends.filter((f) => keys.has(f.key)) } : k;
}

/**
 * `overlayError`: the overlay's last reconcile error (null when it succeeded), named next to
 * held backends so a backend stuck waiting is explained.
 *
 * `applied`: the state the loop last applied with success to this namespace. Drift is the
 * kernel against THAT, never against `e.desired`, which the loop sets before its apply
 * returns: comparing with it flagged every change still being applied as drift (and the
 * periodic check answered it with a full resync). Without an applied state yet (first apply
 * pending or failed) the kernel is compared with the desired state.
 */
export async function lbStatus(dp: Dataplane, e: Entry, service?: string, nameOf?: (serviceId: string) => string | undefined, overlayError: string | null = null, applied?: LbDesired): Promise<LbNsStatus | null> {
  const rows = desiredRows(e.desired, service, nameOf, e.held);
  if (service && rows.length === 0) return null;
  const keys = service ? new Set(rows.map((r) => r.key)) : null;
  let drift: string[];
  let actual: KernelFrontend[] = [];
  let error = e.error;
  try {
    const kernel = await dp.readKernel({ netns: e.netns });
    actual = kernel.frontends;
    const want = expectedKernel(compile(applied ?? e.desired), kernel.backend);
    drift = compareKernel(only(want, keys), only(kernel, keys));
  } catch (err) {
    drift = [`cannot read the kernel: ${toMeshError(err).message}`];
    error ??= toMeshError(err).message;
  }
  const byKey = new Map(actual.map((f) => [f.key, f]));
  for (const r of rows) {
    const f = byKey.get(r.key);
    r.kernel = f ? f.targets.map((t) => formatHostPort(t.ip, t.port)) : null;
    if (f?.draining.length) r.kernelDraining = f.draining.map((t) => formatHostPort(t.ip, t.port));
  }
  return {
    netns: e.netns, kind: e.kind, task: e.taskId,
    lastApply: e.last ? { mode: e.last.mode, changed: e.last.changed, frontends: e.last.frontends, durationMs: Math.round(e.last.durationMs * 10) / 10, at: e.lastAt } : null,
    error, conflicts: e.conflicts, held: heldLines((e.held ?? []).filter((h) => !service || rows.some((r) => r.serviceId === h.service)), overlayError), frontends: rows, drift,
  };
}

/** Status lines of held backends. */
export function heldLines(held: readonly HeldBackend[], overlayError: string | null): string[] {
  const why = overlayError ? ` (the overlay's last reconcile failed: ${overlayError})` : '';
  return held.map((h) => describeHeld(h) + why);
}

/**
 * `LbSubsystem.stats()`: the counters (transactions sent, noops not counted, of which full
 * resyncs; failed applies; last and total transaction wall time in ms; drift resyncs) and what
 * the namespaces hold now: VIP/published-port frontends, active and held backends (summed).
 */
export function lbStats(entries: Iterable<Entry>, counters: Omit<LbStats, 'namespaces' | 'services' | 'backends' | 'heldBackends'>): LbStats {
  let namespaces = 0;
  let services = 0;
  let backends = 0;
  let heldBackends = 0;
  for (const e of entries) {
    namespaces++;
    services += e.last?.frontends ?? 0;
    heldBackends += e.held?.length ?? 0;
    for (const s of e.desired.services) backends += s.vip ? s.ports.length * s.backends.filter((b) => b.state === 'active').length : 0;
    for (const g of e.desired.ingress) backends += g.backends.filter((b) => b.state === 'active' && (g.policy === 'cluster' || b.local)).length;
  }
  return { ...counters, namespaces, services, backends, heldBackends };
}
