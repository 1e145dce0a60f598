/**
 * A task's secrets and configs on this node (swarm's delivery): just before a docker task
 * starts, the worker fetches the payloads of THIS task from the manager (mTLS, one call per
 * task: GET /v1/dispatcher/tasks/:id/files — never gossip, never kept in the saved
 * assignments), writes them into a per-task directory on a tmpfs (`<dataDir>/task-files`,
 * mounted here with mode 0700 when it is not a tmpfs already: payloads never touch a disk),
 * each file with its owner and mode, and hands the runtime read-only bind mounts to the
 * targets (`/run/secrets/NAME`, `/NAME`). The directory goes when the task stops (every stop
 * path ends in the worker's detachLocal), so a secret leaves the node with its last task.
 * The tmpfs is unmounted (lazily: running containers keep their bound files) at agent stop.
 *
 * The netns runtime is refused before this (core/spec/files.ts checkNetnsFiles): its tasks
 * share the host's mount namespace, so there is nowhere private to bind a file.
 * Nothing here logs a payload.
 */
import { chmodSync, chownSync, mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Exec } from '../../adapters/exec.js';
import type { Logger } from '../../adapters/logger.js';
import type { Assignment } from '../../core/assignments.js';
import { MeshError } from '../../core/errors.js';
import type { MountSpec } from '../../core/spec/container.js';
import { FILE_NAME_RE } from '../../core/spec/files.js';

/** statfs f_type of tmpfs. */
const TMPFS_MAGIC = 0x01021994;
/** Upper bound of the tmpfs (bytes): 64 payloads of swarm's 500 KB limit per task, many tasks. */
const TMPFS_SIZE = '64m';

const taskFilesSchema = z.object({
  files: z.array(z.object({
    kind: z.enum(['secret', 'config']),
    name: z.string().regex(FILE_NAME_RE),
    target: z.string().regex(/^\/[^\0]{1,4095}$/),
    uid: z.number().int().min(0).max(2 ** 31 - 1),
    gid: z.number().int().min(0).max(2 ** 31 - 1),
    mode: z.number().int().min(0).max(0o777),
    data: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/),
  }).strict()).max(128),
}).strict();

/** Fetches a task's payloads from the manager (the manager link's mTLS client). */
export type TaskFilesFetch = (taskId: string) => Promise<unknown>;

export class TaskFiles {
  private mounted = false;

  constructor(private readonly o: { root: string; exec: Exec; log: Logger; fetch?: TaskFilesFetch | undefined }) {}

  /** The task's directory (tests read it to prove a secret is gone). */
  dirOf(taskId: string): string {
    return join(this.o.root, taskId);
  }

  /** Writes the task's files and returns the bind mounts for them (none: the task has no secrets or configs). */
  async prepare(a: Assignment): Promise<MountSpec[]> {
    const refs = (a.task.secrets?.length ?? 0) + (a.task.configs?.length ?? 0);
    if (refs === 0) return [];
    if (a.task.runtime !== 'docker') {
      throw new MeshError('MESHD_UNSUPPORTED', `task ${a.task.id}: secrets and configs are not supported by the ${a.task.runtime} runtime`, { runtime: a.task.runtime });
    }
    if (!this.o.fetch) throw new MeshError('MESHD_NOT_READY', `task ${a.task.id} has secrets or configs but this node has no manager link to fetch them`);
    const r = taskFilesSchema.safeParse(await this.o.fetch(a.task.id));
    if (!r.success) throw new MeshError('MESHD_BAD_ARGUMENT', `the manager's files answer for task ${a.task.id} is malformed (${r.error.issues[0]?.path.join('.') ?? ''})`);
    await this.ensureTmpfs();
    const dir = this.dirOf(a.task.id);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o700 });
    const mounts: MountSpec[] = [];
    r.data.files.forEach((f, i) => {
      const path = join(dir, `${f.kind}-${i}-${f.name}`);
      writeFileSync(path, Buffer.from(f.data, 'base64'), { mode: 0o600 });
      chownSync(path, f.uid, f.gid);
      chmodSync(path, f.mode);
      mounts.push({ type: 'bind', source: path, target: f.target, readOnly: true });
    });
    return mounts;
  }

  /** Removes the task's files (idempotent; the task stopped or never started). */
  release(taskId: string): void {
    try {
      rmSync(this.dirOf(taskId), { recursive: true, force: true });
    } catch (e) {
      this.o.log.error({ err: e, task: taskId }, 'cannot remove the task\'s secret files');
    }
  }

  /** Unmounts the tmpfs this worker mounted (lazy: containers keep their bound files). */
  async close(): Promise<void> {
    if (!this.mounted) return;
    const r = await this.o.exec.run('umount', ['-l', this.o.root]);
    if (r.code !== 0) this.o.log.error({ dir: this.o.root, stderr: r.stderr.trim() }, 'cannot unmount the task files tmpfs');
    this.mounted = false;
  }

  private async ensureTmpfs(): Promise<void> {
    mkdirSync(this.o.root, { recursive: true, mode: 0o700 });
    if (statfsSync(this.o.root).type === TMPFS_MAGIC) return;
    const r = await this.o.exec.run('mount', ['-t', 'tmpfs', '-o', `mode=0700,size=${TMPFS_SIZE},nosuid,nodev,noexec`, 'tmpfs', this.o.root]);
    if (r.code !== 0 || statfsSync(this.o.root).type !== TMPFS_MAGIC) {
      throw new MeshError('MESHD_EXEC_FAILED', `cannot mount a tmpfs for secrets at ${this.o.root}: ${r.stderr.trim() || 'not a tmpfs after mount'}`);
    }
    this.mounted = true;
  }
}
