/**
 * The gossip member snapshot on disk (dataDir/gossip-members.json): the addresses of the members
 * this agent last saw alive, so a restart can rejoin through them when its configured seeds are gone
 * or absent (core/gossip/rejoin.ts says why and what is remembered).
 *
 * Written atomically (adapters/fs/atomic.ts, as the worker's assignments and the keyring), debounced:
 * the first membership change arms one write WRITE_DELAY_MS later and later changes ride on it, so a
 * 64-node lab's flaps cost at most one small write per WRITE_DELAY_MS, and an unchanged list is not
 * rewritten at all. flush() writes at once (the agent's stop, before the graceful leave).
 *
 * An unreadable or corrupt file is logged once and read as no members (never a crash); the next write
 * replaces it. A write that fails is logged and retried on the next change (gossip runs on regardless).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../adapters/fs/atomic.js';
import type { Logger } from '../../adapters/logger.js';
import type { Timer, TimerClock } from '../../core/clock.js';
import { decodeMemberSnapshot, encodeMemberSnapshot, type RememberedMember } from '../../core/gossip/rejoin.js';

/** Delay between the first membership change and the write that records it (ms): at most one write per this long. */
export const WRITE_DELAY_MS = 5000;

export function memberSnapshotFile(dataDir: string): string {
  return join(dataDir, 'gossip-members.json');
}

export interface MemberSnapshotOptions {
  dataDir: string;
  clock: TimerClock;
  log: Logger;
  /**
   * The members to record now, or undefined when this is no time to write (the agent has not rejoined
   * and sees nobody alive: writing then would replace what it remembers with an empty list, and the
   * first node back after a full restart would forget its cluster).
   */
  current: () => RememberedMember[] | undefined;
  delayMs?: number;
}

export class MemberSnapshot {
  readonly file: string;
  private timer: Timer | undefined;
  /** Text of the file as we last read or wrote it (undefined: none, or corrupt — the next write replaces it). */
  private lastText: string | undefined;
  /** Writes done (tests and logs). */
  writes = 0;

  constructor(private readonly o: MemberSnapshotOptions) {
    this.file = memberSnapshotFile(o.dataDir);
  }

  /** The remembered members ([] when there is no file, or one we cannot read: one warning then). */
  load(): RememberedMember[] {
    if (!existsSync(this.file)) return [];
    try {
      const text = readFileSync(this.file, 'utf8');
      const list = decodeMemberSnapshot(text);
      this.lastText = text;
      return list;
    } catch (e) {
      this.o.log.warn({ err: e, file: this.file }, 'gossip member snapshot unreadable; ignored (replaced on the next write)');
      return [];
    }
  }

  /** Membership changed: write within delayMs (coalesced with any write already armed). */
  changed(): void {
    if (this.timer) return;
    this.timer = this.o.clock.setTimer(this.o.delayMs ?? WRITE_DELAY_MS, () => {
      this.timer = undefined;
      this.write();
    });
  }

  /** Writes now (if there is something to write) and disarms the pending write. */
  flush(): void {
    this.cancel();
    this.write();
  }

  cancel(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private write(): void {
    const members = this.o.current();
    if (members === undefined) return;
    const text = encodeMemberSnapshot(members);
    if (text === this.lastText) return;
    try {
      mkdirSync(this.o.dataDir, { recursive: true });
      // 0644: member addresses only, no secret (readable for debugging, as before by umask).
      writeFileAtomic(this.file, text, 0o644);
      this.lastText = text;
      this.writes++;
    } catch (e) {
      this.o.log.warn({ err: e, file: this.file }, 'gossip member snapshot not written');
    }
  }
}
