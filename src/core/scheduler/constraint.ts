/**
 * Placement constraints, swarm syntax: `node.id==X`, `node.hostname!=X`,
 * `node.role==manager|worker`, `node.labels.KEY==VALUE`, `engine.labels.KEY==VALUE` (the
 * Docker Engine's own labels, reported by nodes that have Docker), `node.platform.os==linux`,
 * `node.platform.arch==x86_64`. All constraints of a service must hold. As in swarmkit,
 * values compare case-insensitively, and a missing label (or a platform never reported)
 * fails `==` but satisfies `!=`. Architectures also match under their Go names
 * (`amd64` = `x86_64`, `arm64` = `aarch64`), which people type as often as uname's.
 */
import { MeshError } from '../errors.js';
import type { Node } from '../spec/types.js';

export type ConstraintOp = '==' | '!=';
export type Constraint =
  | { field: 'id' | 'hostname' | 'role'; op: ConstraintOp; value: string }
  | { field: 'label' | 'engineLabel'; label: string; op: ConstraintOp; value: string }
  | { field: 'os' | 'arch'; op: ConstraintOp; value: string };

const RE = /^\s*([A-Za-z0-9._/-]+)\s*(==|!=)\s*(.*?)\s*$/;
const LABEL_KEY_RE = /^[A-Za-z0-9._/-]+$/;

/** Parses one expression; throws MESHD_BAD_ARGUMENT explaining what is wrong. */
export function parseConstraint(expr: string): Constraint {
  const m = RE.exec(expr);
  if (!m) throw new MeshError('MESHD_BAD_ARGUMENT', `constraint "${expr}": expected KEY==VALUE or KEY!=VALUE`);
  const key = m[1]!;
  const op = m[2] as ConstraintOp;
  const value = m[3]!;
  if (value === '' || /[=!]=/.test(value)) throw new MeshError('MESHD_BAD_ARGUMENT', `constraint "${expr}": bad value`);
  const lower = key.toLowerCase();
  if (lower === 'node.id') return { field: 'id', op, value };
  if (lower === 'node.hostname') return { field: 'hostname', op, value };
  if (lower === 'node.role') {
    const v = value.toLowerCase();
    if (v !== 'manager' && v !== 'worker') throw new MeshError('MESHD_BAD_ARGUMENT', `constraint "${expr}": node.role is manager or worker`);
    return { field: 'role', op, value: v };
  }
  if (lower.startsWith('node.labels.') || lower.startsWith('engine.labels.')) {
    const engine = lower.startsWith('engine.');
    const label = key.slice((engine ? 'engine.labels.' : 'node.labels.').length);
    if (!LABEL_KEY_RE.test(label)) throw new MeshError('MESHD_BAD_ARGUMENT', `constraint "${expr}": bad label key`);
    return { field: engine ? 'engineLabel' : 'label', label, op, value };
  }
  if (lower === 'node.platform.os') return { field: 'os', op, value };
  if (lower === 'node.platform.arch') return { field: 'arch', op, value };
  throw new MeshError('MESHD_BAD_ARGUMENT', `constraint "${expr}": unknown key ${key} (node.id, node.hostname, node.role, node.labels.KEY, engine.labels.KEY, node.platform.os, node.platform.arch)`);
}

function eq(a: string | undefined, b: string): boolean {
  return a !== undefined && (a === b || a.toLowerCase() === b.toLowerCase());
}

/** Go's architecture names → uname's (what docker shows in node.platform.arch). */
const ARCH_ALIASES: Readonly<Record<string, string>> = { amd64: 'x86_64', arm64: 'aarch64', '386': 'i386' };
const archName = (a: string): string => ARCH_ALIASES[a.toLowerCase()] ?? a.toLowerCase();

function own(o: Readonly<Record<string, string>> | undefined, k: string): string | undefined {
  return o && Object.prototype.hasOwnProperty.call(o, k) ? o[k] : undefined;
}

/** Does this node satisfy the constraint? */
export function matchConstraint(c: Constraint, node: Node): boolean {
  let actual: string | undefined;
  switch (c.field) {
    case 'id': actual = node.id; break;
    case 'hostname': actual = node.hostname; break;
    case 'role': actual = node.role; break;
    case 'label': actual = own(node.labels, c.label); break;
    case 'engineLabel': actual = own(node.engine?.labels, c.label); break;
    case 'os': actual = node.platform?.os; break;
    case 'arch': actual = node.platform ? archName(node.platform.arch) : undefined; break;
  }
  const same = eq(actual, c.field === 'arch' ? archName(c.value) : c.value);
  return c.op === '==' ? same : !same;
}

/** Parses a list once and returns a predicate (all must hold). */
export function compileConstraints(exprs: readonly string[]): (node: Node) => boolean {
  const cs = exprs.map(parseConstraint);
  if (cs.length === 0) return () => true;
  return (node) => cs.every((c) => matchConstraint(c, node));
}
