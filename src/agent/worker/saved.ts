/**
 * The worker's assignment list on disk (dataDir/assignments.json), so an agent restarted
 * without its manager still knows which of the tasks it finds to adopt. Written atomically
 * (adapters/fs/atomic.ts) with mode 0600: task specs carry their env values, which users fill
 * with passwords. An unreadable or empty file is logged and read as no assignments (the tasks
 * found are then stopped: the manager re-sends the list on its next round).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../adapters/fs/atomic.js';
import type { Logger } from '../../adapters/logger.js';
import type { Assignment } from '../../core/assignments.js';
import { validateAssignments } from './plan.js';

export function assignmentsFile(dataDir: string): string {
  return join(dataDir, 'assignments.json');
}

export function loadAssignments(dataDir: string, log: Logger): Assignment[] {
  const file = assignmentsFile(dataDir);
  if (!existsSync(file)) return [];
  try {
    return validateAssignments(JSON.parse(readFileSync(file, 'utf8')));
  } catch (e) {
    log.error({ err: e, file }, 'saved assignments unreadable; starting with none (tasks not assigned will be stopped)');
    return [];
  }
}

export function saveAssignments(dataDir: string, list: readonly Assignment[]): void {
  const file = assignmentsFile(dataDir);
  mkdirSync(dataDir, { recursive: true });
  writeFileAtomic(file, JSON.stringify(list), 0o600);
}
