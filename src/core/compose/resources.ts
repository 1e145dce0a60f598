/**
 * Compose `deploy.resources` → the spec's reservations and limits:
 * `reservations.{cpus, memory}` are what the scheduler reserves per task, `limits.{cpus,
 * memory}` what the runtime enforces (the docker runtime; the manager refuses limits on the
 * netns runtime with MESHD_UNSUPPORTED). Any other key (`pids`, `devices`,
 * `generic_resources`) is refused naming its path: meshd would not apply it.
 */
import type { Resources } from '../spec/types.js';
import { parseBytes, parseCpus } from '../spec/units.js';
import { asObj, at, checkKeys, fail, type Obj } from './fields.js';

export interface ComposeResources {
  reservations?: Resources;
  limits?: Resources;
}

function amounts(v: unknown, path: string): Resources {
  const o: Obj = asObj(v, path);
  checkKeys(o, path, ['cpus', 'memory'], []);
  const out: Resources = { cpuMilli: 0, memoryBytes: 0 };
  const read = <T>(key: string, f: (x: string | number, what: string) => T): T | undefined => {
    const x = o[key];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== 'string' && typeof x !== 'number') fail(at(path, key), 'expected a number or a string');
    try {
      return f(x, at(path, key));
    } catch (e) {
      return fail(at(path, key), (e as Error).message.replace(`${at(path, key)} `, ''));
    }
  };
  out.cpuMilli = read('cpus', parseCpus) ?? 0;
  out.memoryBytes = read('memory', parseBytes) ?? 0;
  return out;
}

/** Parses `deploy.resources` (its path given). */
export function composeResources(v: unknown, path: string): ComposeResources {
  const o = asObj(v, path);
  checkKeys(o, path, ['reservations', 'limits'], []);
  const r: ComposeResources = {};
  if (o.reservations !== undefined && o.reservations !== null) r.reservations = amounts(o.reservations, at(path, 'reservations'));
  if (o.limits !== undefined && o.limits !== null) {
    const l = amounts(o.limits, at(path, 'limits'));
    if (l.cpuMilli > 0 || l.memoryBytes > 0) r.limits = l;
  }
  return r;
}
