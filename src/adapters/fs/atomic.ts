/**
 * One atomic file write for every small state file a daemon or the lab keeps (keys, keyring,
 * assignments, member snapshot, lab state, pid files): readers see the old file or the new one,
 * never half of one.
 *
 * How: the data goes to `<path>.tmp-<random>` (created with `mode`, then chmod'ed to it so the
 * umask cannot loosen or tighten it), is fsync'ed, and the temp file is renamed over `path`.
 * - Random suffix: two writers of the same file (two `netctl lab` processes writing lab.json)
 *   never share a temp file, and a temp file left by a crash is never reused or read: readers
 *   open `path` only. Leftovers are not swept (a sweep could delete another writer's temp file
 *   in flight); they are the size of one state file and go with their directory.
 * - fsync before rename: Node's writeFileSync does not fsync, and after a power cut ext4/xfs can
 *   show the renamed file with no data (0 bytes). The gossip keyring's reader refuses such a file
 *   (and an agent would then not start), so the data is made durable before the name points at it.
 *   The directory is not fsync'ed: a crash may then leave the OLD file in place, which every
 *   reader handles (it is a complete, older state).
 * Cost: one fsync per write; every caller writes on a change only (debounced for the member
 * snapshot), never per packet or per round.
 *
 * On failure the temp file is removed (best effort) and the error thrown: callers decide whether a
 * write that failed is fatal (keys) or logged and retried (member snapshot).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** Writes `data` to `path` atomically and durably with permission bits `mode` (default 0600: secrets). */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  let fd: number | undefined;
  try {
    // 'wx': never follow or reuse an existing file at the temp name.
    fd = openSync(tmp, 'wx', mode);
    fchmodSync(fd, mode);
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {
        /* already failing: the first error is the one reported */
      }
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}
