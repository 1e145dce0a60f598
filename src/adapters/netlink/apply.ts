/**
 * Applies a plan: one process per batch — `ip -n NS -batch -` / `bridge -n NS -batch -`
 * with the whole script on stdin — never one process per entry. Batches run in order;
 * the first failure throws MESHD_EXEC_FAILED naming the namespace and tool, and the
 * caller's next reconcile converges from whatever the kernel then holds.
 */
import type { Batch } from '../../core/overlay/diff.js';
import type { Exec } from '../exec.js';

export interface ApplyStats {
  /** Processes spawned. */
  processes: number;
  /** Lines applied. */
  lines: number;
}

export async function applyBatches(exec: Exec, batches: readonly Batch[], hostNs: string | null): Promise<ApplyStats> {
  const stats: ApplyStats = { processes: 0, lines: 0 };
  for (const b of batches) {
    stats.processes++;
    if (b.kind === 'netns-add') {
      await exec.check('ip', ['netns', 'add', b.ns]);
      // Loopback up: the sandbox is otherwise inert, but lo down confuses tools run inside it.
      await exec.check('ip', ['-n', b.ns, 'link', 'set', 'lo', 'up']);
      stats.processes++;
    } else if (b.kind === 'netns-del') {
      // The VXLAN device first (see core/overlay/diff.ts phase 1): frees its VNI at once.
      if (b.vxlan) {
        await exec.check('ip', ['-n', b.ns, 'link', 'del', b.vxlan]);
        stats.processes++;
      }
      await exec.check('ip', ['netns', 'del', b.ns]);
    } else {
      const ns = b.ns ?? hostNs;
      await exec.check(b.kind, [...(ns ? ['-n', ns] : []), '-batch', '-'], { input: b.lines.join('\n') + '\n' });
      stats.lines += b.lines.length;
    }
  }
  return stats;
}
