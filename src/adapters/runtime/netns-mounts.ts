/**
 * Bind and tmpfs mounts for netns tasks (`--mount type=bind|tmpfs` with `--runtime netns`).
 * `ip netns exec` already runs its program in a fresh mount namespace (iproute2 unshares it and
 * makes `/` a recursive slave, so nothing made inside propagates back to the host): the task's
 * mounts are made there by a tiny `sh` prelude that then `exec`s the program, so the pid the
 * runtime tracks is still the program's and the mounts exist before its first instruction.
 *
 * Paths travel as positional parameters, never spliced into the script (no quoting to get
 * wrong). A netns task shares the node's filesystem: the target must already exist there (we
 * never create directories on the host), and a bind source too; both are checked before the
 * start so the failure is a clear error, not a task that dies at once.
 */
import { existsSync } from 'node:fs';
import type { MountSpec } from '../../core/spec/container.js';
import { MeshError } from '../../core/errors.js';

/**
 * The prelude: reads `TYPE SOURCE TARGET OPTIONS` quadruples up to `--`, mounts each, then
 * runs the rest. A read-only bind is remounted read-only (a bind mount ignores `ro` at creation).
 */
export const MOUNT_PRELUDE = [
  'set -e',
  'while [ "$1" != "--" ]; do',
  '  if [ "$1" = bind ]; then',
  '    mount --bind "$2" "$3"',
  '    if [ "$4" = ro ]; then mount -o remount,bind,ro "$3"; fi',
  '  else',
  '    mount -t tmpfs -o "$4" tmpfs "$3"',
  '  fi',
  '  shift 4',
  'done',
  'shift',
  // A --workdir inside a mount target: enter the mounted directory, not the one it covers.
  'cd "$PWD" || true',
  'exec "$@"',
].join('\n');

/** tmpfs mount options: docker's defaults (nosuid,nodev,noexec off) plus size and mode when given. */
function tmpfsOptions(m: MountSpec): string {
  const o = ['nosuid', 'nodev'];
  if (m.readOnly) o.push('ro');
  if (m.tmpfsSizeBytes) o.push(`size=${m.tmpfsSizeBytes}`);
  if (m.tmpfsMode !== undefined) o.push(`mode=${m.tmpfsMode.toString(8)}`);
  return o.join(',');
}

/**
 * The argv that makes `mounts` and then runs `argv` (unchanged when there are none). Throws
 * MESHD_UNSUPPORTED for a volume, MESHD_BAD_ARGUMENT when a path is missing on this node
 * (`exists` is the check, injectable for tests).
 */
export function withMounts(taskId: string, mounts: readonly MountSpec[] | undefined, argv: readonly string[], exists: (p: string) => boolean = existsSync): string[] {
  if (!mounts?.length) return [...argv];
  const args: string[] = [];
  for (const m of mounts) {
    if (m.type === 'volume') throw new MeshError('MESHD_UNSUPPORTED', `task ${taskId}: --mount type=volume is not supported by the netns runtime`, { runtime: 'netns' });
    if (!exists(m.target)) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `task ${taskId}: mount target ${m.target} does not exist on this node (a netns task shares the node's filesystem: create it, or use --runtime docker)`, { target: m.target });
    }
    if (m.type === 'bind') {
      if (!m.source || !exists(m.source)) throw new MeshError('MESHD_BAD_ARGUMENT', `task ${taskId}: bind source ${m.source ?? '(none)'} does not exist on this node`, { source: m.source });
      args.push('bind', m.source, m.target, m.readOnly ? 'ro' : 'rw');
    } else {
      args.push('tmpfs', 'tmpfs', m.target, tmpfsOptions(m));
    }
  }
  return ['sh', '-c', MOUNT_PRELUDE, 'meshd-mounts', ...args, '--', ...argv];
}
