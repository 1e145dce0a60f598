/**
 * Re-tunes running tasks' overlay interfaces after the overlay's automatic MTU changed (issue 19
 * §5; agent/overlay/mtu.ts decides, the overlay reconcile fixes the sandbox side of each veth).
 *
 * Why the task side matters: a task whose eth<i> keeps the old, larger MTU sends frames the
 * sandbox veth, bridge or VXLAN device can no longer carry, and those are dropped silently —
 * the black hole the feature exists to remove. With eth<i> at the new MTU the task's own stack
 * refuses an oversized DF packet at once ("message too long") and TCP picks a fitting MSS.
 * New tasks get the new MTU at attach (runtimeAttachmentsOf reads overlay.mtuOf); this is for
 * the ones already running: ONE `ip -batch` per task namespace, only for networks without
 * `--mtu` (a configured MTU never moves) and never for macvlan attachments (the parent's MTU).
 */
import type { Assignment } from '../../core/assignments.js';
import type { OverlayNetwork } from '../../core/overlay/model.js';
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import { taskIfName } from '../../adapters/runtime/attach.js';
import { overlayNetworkOf } from './plan.js';

/** `ip -batch` lines for one task namespace ('' when it has no automatic-MTU overlay attachment). */
export function retuneScript(a: Assignment, mtuOf: (n: OverlayNetwork) => number): string {
  const lines: string[] = [];
  a.attachments.forEach((att, i) => {
    if (att.network.driver === 'macvlan' || att.network.mtu !== undefined) return;
    lines.push(`link set ${taskIfName(i)} mtu ${mtuOf(overlayNetworkOf(att))}`);
  });
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * Applies retuneScript to each task that has a namespace; returns how many namespaces were
 * changed and which failed (a task stopping meanwhile loses its namespace: that is logged, and
 * the caller counts it; nothing is retried — a task started after this reads the new MTU).
 */
export async function retuneTasks(exec: Exec, tasks: Iterable<{ a: Assignment; netns: string | null }>, mtuOf: (n: OverlayNetwork) => number, log: Logger): Promise<{ changed: number; failed: string[] }> {
  let changed = 0;
  const failed: string[] = [];
  for (const t of tasks) {
    const script = retuneScript(t.a, mtuOf);
    if (!script || !t.netns) continue;
    const r = await exec.run('ip', ['-n', t.netns, '-batch', '-'], { input: script });
    if (r.code === 0) changed++;
    else {
      failed.push(t.a.task.id);
      log.warn({ task: t.a.task.id, netns: t.netns, stderr: r.stderr.trim().slice(0, 300) }, 'could not apply the new overlay MTU to a task (stopping?)');
    }
  }
  return { changed, failed };
}
