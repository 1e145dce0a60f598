/**
 * What `netctl stack deploy` must do, given the plan and what the cluster already holds:
 * create missing networks and services, update services whose spec differs, leave equal
 * ones alone, refuse to take over objects that are not the stack's, and (with --prune)
 * remove the stack's services that left the file. Pure, so the CLI only executes it.
 */
import { MeshError } from '../errors.js';
import type { ServiceSpec } from '../spec/types.js';
import { isDynamicPort } from '../spec/ports.js';
import { stackOf, type StackPlan } from './translate.js';

export interface ExistingService {
  id: string;
  version: number;
  spec: ServiceSpec;
}

export type DeployStep =
  | { kind: 'create-network'; name: string; request: NonNullable<StackPlan['networks'][number]['request']> }
  | { kind: 'create-service'; name: string; spec: ServiceSpec }
  | { kind: 'update-service'; name: string; id: string; version: number; spec: ServiceSpec }
  | { kind: 'unchanged-service'; name: string; id: string }
  | { kind: 'remove-service'; name: string; id: string };

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => [k, canonical(o[k])]);
  }
  return v;
}

/**
 * `spec` with each open ingress port (`"8000"`) given the port the manager assigned it in
 * `cur` (same target and protocol), as the manager itself would keep it (spec/ports.ts): a
 * redeploy of an unchanged file is then no update.
 */
function withKeptPorts(spec: ServiceSpec, cur: ServiceSpec): ServiceSpec {
  const pool = cur.ports.filter((p) => p.mode === 'ingress' && isDynamicPort(p.published));
  if (!pool.length) return spec;
  return {
    ...spec,
    ports: spec.ports.map((p) => {
      if (p.mode !== 'ingress' || p.published > 0) return p;
      const i = pool.findIndex((q) => q.target === p.target && q.proto === p.proto);
      return i < 0 ? p : { ...p, published: pool.splice(i, 1)[0]!.published };
    }),
  };
}

/** Same spec content (key order and undefined members do not matter)? */
export function sameServiceSpec(a: ServiceSpec, b: ServiceSpec): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/**
 * Steps in execution order: networks first (services reference them), then services in
 * file order, then prunes. Throws MESHD_BAD_ARGUMENT when an external network is
 * missing or a name is held by a service of another stack or none.
 */
export function planDeploy(plan: StackPlan, services: readonly ExistingService[], networkNames: readonly string[], prune = false): DeployStep[] {
  const steps: DeployStep[] = [];
  const nets = new Set(networkNames);
  for (const n of plan.networks) {
    if (n.external) {
      if (!nets.has(n.name)) throw new MeshError('MESHD_BAD_ARGUMENT', `networks.${n.key}: external network ${n.name} does not exist`, { field: `networks.${n.key}` });
    } else if (!nets.has(n.name)) steps.push({ kind: 'create-network', name: n.name, request: n.request! });
  }
  const byName = new Map(services.map((s) => [s.spec.name, s]));
  for (const spec of plan.services) {
    const cur = byName.get(spec.name);
    if (!cur) steps.push({ kind: 'create-service', name: spec.name, spec });
    else if (stackOf(cur.spec) !== plan.stack) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `service ${spec.name} already exists and is not part of stack ${plan.stack}`, { field: 'services' });
    } else if (sameServiceSpec(cur.spec, withKeptPorts(spec, cur.spec))) steps.push({ kind: 'unchanged-service', name: spec.name, id: cur.id });
    else steps.push({ kind: 'update-service', name: spec.name, id: cur.id, version: cur.version, spec });
  }
  if (prune) {
    const wanted = new Set(plan.services.map((s) => s.name));
    for (const s of services) {
      if (stackOf(s.spec) === plan.stack && !wanted.has(s.spec.name)) steps.push({ kind: 'remove-service', name: s.spec.name, id: s.id });
    }
  }
  return steps;
}
