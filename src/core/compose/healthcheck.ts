/**
 * A Compose service's `healthcheck` (test, interval, timeout, retries, start_period, disable)
 * → the spec's `healthcheck` (core/health/spec.ts; the manager's schema checks ranges and
 * combinations and names the field). Compose's forms of `test`: a string (run by the shell,
 * CMD-SHELL) or a list starting with NONE, CMD or CMD-SHELL. `start_interval` (newer Compose)
 * is refused naming the key (MESHD_UNSUPPORTED): meshd never accepts a key it then drops.
 */
import type { HealthcheckSpec } from '../health/spec.js';
import { asBool, asList, asObj, asString, asWhole, at, checkKeys, fail, parseComposeDuration } from './fields.js';

const KEYS = ['test', 'interval', 'timeout', 'retries', 'start_period', 'disable'];
const UNSUPPORTED = ['start_interval'];

export function composeHealthcheck(v: unknown, path: string): HealthcheckSpec {
  const o = asObj(v, path);
  checkKeys(o, path, KEYS, UNSUPPORTED);
  const h: HealthcheckSpec = {};
  if (o.test !== undefined && o.test !== null) {
    const p = at(path, 'test');
    if (typeof o.test === 'string') {
      if (!o.test.trim()) fail(p, 'must not be empty');
      h.test = ['CMD-SHELL', o.test];
    } else {
      const list = asList(o.test, p).map((x, i) => asString(x, `${p}[${i}]`));
      const head = list[0];
      if (head !== 'NONE' && head !== 'CMD' && head !== 'CMD-SHELL') fail(p, `a list must start with NONE, CMD or CMD-SHELL, got ${JSON.stringify(head ?? '')}`);
      h.test = list;
    }
  }
  if (o.interval !== undefined) h.intervalMs = parseComposeDuration(o.interval, at(path, 'interval'));
  if (o.timeout !== undefined) h.timeoutMs = parseComposeDuration(o.timeout, at(path, 'timeout'));
  if (o.retries !== undefined) h.retries = asWhole(o.retries, at(path, 'retries'));
  if (o.start_period !== undefined) h.startPeriodMs = parseComposeDuration(o.start_period, at(path, 'start_period'));
  if (o.disable !== undefined && asBool(o.disable, at(path, 'disable'))) h.disable = true;
  return h;
}
