/**
 * Placement constraints, swarm syntax: `node.id==X`, `node.hostname!=X`,
 * `node.role==manager|worker`, `node.labels.KEY==VALUE`. All constraints of a service
 * must hold. As in swarmkit, values compare case-insensitively, and a missing label
 * fails `==` but satisfies `!=`.
 */
import { MeshError } from '../errors.js';
import type { Node } from '../spec/types.js';

export type ConstraintOp = '==' | '!=';
export type Constraint =
  | { field: 'id' | 'hostname' | 'role'; op: ConstraintOp; value: string }
  | { field: 'label'; label: string; op: ConstraintOp; value: string };

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
  if (lower.startsWith('node.labels.')) {
    const label = key.slice('node.labels.'.length);
    if (!LABEL_KEY_RE.test(label)) throw new MeshError('MESHD_BAD_ARGUMENT', `constraint "${expr}": bad label key`);
    return { field: 'label', label, op, value };
  }
  throw new MeshError('MESHD_BAD_ARGUMENT', `constraint "${expr}": unknown key ${key} (node.id, node.hostname, node.role, node.labels.KEY)`);
}

function eq(a: string | undefined, b: string): boolean {
  return a !== undefined && (a === b || a.toLowerCase() === b.toLowerCase());
}

/** Does this node satisfy the constraint? */
export function matchConstraint(c: Constraint, node: Node): boolean {
  let actual: string | undefined;
  switch (c.field) {
    case 'id': actual = node.id; break;
    case 'hostname': actual = node.hostname; break;
    case 'role': actual = node.role; break;
    case 'label': actual = Object.prototype.hasOwnProperty.call(node.labels, c.label) ? node.labels[c.label] : undefined; break;
  }
  const same = eq(actual, c.value);
  return c.op === '==' ? same : !same;
}

/** Parses a list once and returns a predicate (all must hold). */
export function compileConstraints(exprs: readonly string[]): (node: Node) => boolean {
  const cs = exprs.map(parseConstraint);
  if (cs.length === 0) return () => true;
  return (node) => cs.every((c) => matchConstraint(c, node));
}
