/**
 * `--allow-from` flags of `netctl service create` / `update` (issue #19, policies between
 * services), docker's list-flag style: `--allow-from a,b` (repeatable, comma lists), and on
 * update `--allow-from` replaces the list while `--allow-from-add` / `--allow-from-rm` edit it.
 * Two reserved values: `--allow-from '*'` = open again (no list), `--allow-from ''` = nobody
 * (an empty list). Names are checked by the manager (DNS labels; MESHD_BAD_ARGUMENT naming
 * `allowFrom.N`).
 */
import type { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import { editAllowFrom } from '../core/policy/spec.js';
import { collect } from './node-commands.js';

export interface PolicyFlags {
  allowFrom?: string[];
  allowFromAdd?: string[];
  allowFromRm?: string[];
}

export function addPolicyOptions(c: Command, phase: 'create' | 'update'): Command {
  c.option('--allow-from <services>', phase === 'create'
    ? 'only these services may connect to the tasks (comma list, repeatable; \'\' = nobody; default: open, unless the network is --default-deny)'
    : 'replace the services allowed to connect (comma list, repeatable; \'*\' = open again, \'\' = nobody)', collect);
  if (phase === 'update') {
    c.option('--allow-from-add <services>', 'allow these services too (comma list, repeatable)', collect)
      .option('--allow-from-rm <services>', 'stop allowing these services (comma list, repeatable)', collect);
  }
  return c;
}

/** Splits comma lists; `'*'` alone means open (null), `''` alone means nobody ([]). */
export function parseAllowList(values: readonly string[], what: string): string[] | null {
  if (values.length === 1 && values[0]!.trim() === '*') return null;
  const out: string[] = [];
  for (const v of values) {
    for (const part of v.split(',')) {
      const name = part.trim();
      if (name === '*') throw new MeshError('MESHD_BAD_ARGUMENT', `${what}: '*' (open) cannot be mixed with service names`);
      if (name) out.push(name);
    }
  }
  return [...new Set(out)];
}

/** The spec fields of `service create` (none when the flag is absent: open). */
export function allowFromCreate(o: PolicyFlags): { allowFrom?: string[] } {
  if (o.allowFrom === undefined) return {};
  const list = parseAllowList(o.allowFrom, '--allow-from');
  return list === null ? {} : { allowFrom: list };
}

/** The allow-from after `service update`'s flags over the stored one (undefined: open). */
export function allowFromUpdate(base: readonly string[] | undefined, o: PolicyFlags): string[] | undefined {
  if (o.allowFrom === undefined && !o.allowFromAdd && !o.allowFromRm) return base && [...base];
  const add = o.allowFromAdd ? parseAllowList(o.allowFromAdd, '--allow-from-add') : [];
  const rm = o.allowFromRm ? parseAllowList(o.allowFromRm, '--allow-from-rm') : [];
  if (add === null || rm === null) throw new MeshError('MESHD_BAD_ARGUMENT', "'*' is only valid with --allow-from (it opens the service again)");
  return editAllowFrom(base, {
    ...(o.allowFrom !== undefined ? { replace: parseAllowList(o.allowFrom, '--allow-from') } : {}),
    add, rm,
  });
}
