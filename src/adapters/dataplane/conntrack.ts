/**
 * Deleting the conntrack entries of removed backends (what and why: core/lb/ct-flush.ts). One
 * `conntrack -R FILE` process per namespace and call, its `-D` lines in a private temporary file —
 * never a process per entry or per backend. Not stdin: `-R -` opens /dev/stdin, which fails when
 * stdin is the socket node's child_process gives it ("Failed to open file /dev/stdin"). The
 * in-memory fake records the calls for unit tests and `--dry-run`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { conntrackBatch, type StaleTarget } from '../../core/lb/ct-flush.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { Exec } from '../exec.js';
import type { NetnsOptions } from './types.js';

export interface CtFlushResult {
  /** `-D` lines sent (0: no process was run). */
  lines: number;
  /** Entries the kernel deleted (conntrack prints each deleted entry on stdout in `-R` mode). */
  deleted: number;
}

export interface ConntrackFlusher {
  /**
   * Deletes the entries of `stale` in the namespace. Throws MESHD_EXEC_FAILED when conntrack fails
   * (missing binary, a refused line: the whole batch is then skipped by conntrack).
   */
  flush(stale: readonly StaleTarget[], opts?: NetnsOptions): Promise<CtFlushResult>;
}

export class ExecConntrack implements ConntrackFlusher {
  constructor(private readonly exec: Exec) {}

  async flush(stale: readonly StaleTarget[], opts: NetnsOptions = {}): Promise<CtFlushResult> {
    const input = conntrackBatch(stale);
    if (!input) return { lines: 0, deleted: 0 };
    let out: string;
    const dir = await mkdtemp(join(tmpdir(), 'meshd-ct-'));
    try {
      const file = join(dir, 'delete');
      await writeFile(file, input, { mode: 0o600 });
      out = await this.exec.check('conntrack', ['-R', file], { netns: opts.netns, timeoutMs: 30_000 });
    } catch (e) {
      throw new MeshError('MESHD_EXEC_FAILED', `conntrack flush of ${stale.length} removed backend(s)${opts.netns ? ` in ${opts.netns}` : ''} failed: ${toMeshError(e).message}`, { netns: opts.netns }, { cause: e });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const lines = input.split('\n').length - 1;
    return { lines, deleted: out.split('\n').filter((l) => l.trim() !== '').length };
  }
}

/** Records what would be deleted (unit tests, the memory dataplane); `failNext` injects failures. */
export class MemoryConntrack implements ConntrackFlusher {
  readonly calls: Array<{ netns: string; stale: StaleTarget[] }> = [];
  private failures = 0;

  failNext(n = 1): void {
    this.failures = n;
  }

  async flush(stale: readonly StaleTarget[], opts: NetnsOptions = {}): Promise<CtFlushResult> {
    if (stale.length === 0) return { lines: 0, deleted: 0 };
    if (this.failures > 0) {
      this.failures--;
      throw new MeshError('MESHD_EXEC_FAILED', 'memory conntrack: injected failure', { netns: opts.netns });
    }
    this.calls.push({ netns: opts.netns ?? '', stale: [...stale] });
    const lines = conntrackBatch(stale).split('\n').length - 1;
    return { lines, deleted: 0 };
  }
}
