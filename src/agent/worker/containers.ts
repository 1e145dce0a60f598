/**
 * The standalone containers this node runs (`netctl run`, core/standalone/run.ts): their
 * one-shot assignments, kept apart from the manager's list (the manager replaces that list
 * whole; these are the node's own) and persisted in dataDir/containers.json so an agent restart
 * adopts a container still running, as it adopts tasks. The worker merges both lists into what
 * it converges. Also the exit waiters: `netctl run` without `-d` waits for the exit code here
 * (docker's `wait`).
 *
 * Why the worker runs them rather than a side path: they share the task machinery that must
 * stay consistent — the network sandbox and gossip network membership (a node leaves a network
 * only when no task *or container* uses it), records, DNS binding in the namespace, exit events,
 * and adoption after a restart.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../adapters/fs/atomic.js';
import type { Logger } from '../../adapters/logger.js';
import type { Assignment } from '../../core/assignments.js';
import { validateAssignments } from './plan.js';

export function containersFile(dataDir: string): string {
  return join(dataDir, 'containers.json');
}

/** What a container's wait resolves with: its exit code (null: unknown, e.g. exited while the agent was down). */
export type ExitWaiter = (code: number | null) => void;

export class StandaloneContainers {
  private readonly byId = new Map<string, Assignment>();
  /** Exit codes of containers that ended (kept until removal, for `wait` after the fact and `ls`). */
  private readonly codes = new Map<string, number | null>();
  private readonly waiters = new Map<string, ExitWaiter[]>();

  constructor(private readonly dataDir: string, private readonly log: Logger) {}

  load(): void {
    this.byId.clear();
    const file = containersFile(this.dataDir);
    if (!existsSync(file)) return;
    try {
      for (const a of validateAssignments(JSON.parse(readFileSync(file, 'utf8')))) this.byId.set(a.task.id, a);
    } catch (e) {
      this.log.error({ err: e, file }, 'saved standalone containers unreadable; starting with none (their containers will be stopped)');
    }
  }

  private save(): void {
    const file = containersFile(this.dataDir);
    mkdirSync(this.dataDir, { recursive: true });
    // 0600: the containers' specs carry their env values (as assignments.json, saved.ts).
    writeFileAtomic(file, JSON.stringify([...this.byId.values()]), 0o600);
  }

  list(): Assignment[] {
    return [...this.byId.values()];
  }
  has(id: string): boolean {
    return this.byId.has(id);
  }
  ids(): ReadonlySet<string> {
    return new Set(this.byId.keys());
  }

  add(a: Assignment): void {
    this.byId.set(a.task.id, a);
    this.save();
  }

  delete(id: string): void {
    this.byId.delete(id);
    this.codes.delete(id);
    this.save();
    for (const w of this.waiters.get(id) ?? []) w(null);
    this.waiters.delete(id);
  }

  /** The container's process ended with `code`: wakes its waiters. */
  ended(id: string, code: number | null): void {
    if (!this.byId.has(id)) return;
    this.codes.set(id, code);
    for (const w of this.waiters.get(id) ?? []) w(code);
    this.waiters.delete(id);
  }

  exitCode(id: string): number | null | undefined {
    return this.codes.get(id);
  }

  /** Resolves with the exit code once the container ended (at once when it already has). */
  wait(id: string): Promise<number | null> {
    if (this.codes.has(id)) return Promise.resolve(this.codes.get(id)!);
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
    });
  }

  /** Releases every waiter (agent stop): a `netctl run` waiting gets an unknown exit code rather than hanging. */
  closeAll(): void {
    for (const list of this.waiters.values()) for (const w of list) w(null);
    this.waiters.clear();
  }
}
