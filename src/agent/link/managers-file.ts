/**
 * The link's cache of the cluster's manager API addresses (<dataDir>/cluster/managers.json): read at
 * activation so a restarted node can fail over before its first refresh, rewritten when the list the
 * managers report changes. A damaged file costs only the failover targets until the next refresh.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../adapters/logger.js';

const MANAGERS_FILE = 'managers.json';

/** The cached addresses ([] when absent or unreadable — said in the log, never thrown). */
export function loadManagerList(dir: string, log: Logger): string[] {
  const path = join(dir, MANAGERS_FILE);
  if (!existsSync(path)) return [];
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0 && x.length < 300) : [];
  } catch (e) {
    log.warn({ err: (e as Error).message, path }, 'manager list unreadable; using the join address until refreshed');
    return [];
  }
}

/** Writes the list when it differs from the file (mode 0600, like the rest of the identity). */
export function saveManagerList(dir: string, addrs: string[]): void {
  const text = JSON.stringify(addrs);
  const path = join(dir, MANAGERS_FILE);
  if (!existsSync(path) || readFileSync(path, 'utf8') !== text) writeFileSync(path, text, { mode: 0o600 });
}
