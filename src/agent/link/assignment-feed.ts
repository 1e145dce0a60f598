/**
 * The node's assignment list, pushed by the manager instead of polled (issue 18 item 1: the 1 s poll
 * was the largest part of "manager commit → last node", about half a second on average and a full
 * second at worst, before the task even started). One request at a time to
 * `GET /v1/dispatcher/assignments/watch?known=TOKEN&waitMs=N` (src/manager/control/assignment-watch.ts):
 * the manager answers as soon as a commit changes this node's list, or after `waitMs` with the same
 * list; the feed asks again at once. The token is the list's digest, so it survives a fail-over to
 * another manager (ManagerPool: an unreachable manager is skipped, a follower's redirect followed).
 *
 * When the link's pool moves to another manager, `redirect()` cancels a request the old one holds and
 * asks the new one at once. A failed request is retried after `retryMs` (what the poll's period was), its message logged once
 * per distinct error. A manager without the watch route (older version: MESHD_UNKNOWN_ROUTE) puts the
 * feed in `poll` mode: the link's dispatcher round fetches the plain list again, and the feed tries the
 * watch again after `recheckMs` (the cluster may have been upgraded meanwhile).
 *
 * Both paths hand the list to the worker through `apply`, which skips a list identical to the last one
 * applied (the worker diffs anyway; this keeps its log quiet).
 */
import type { Logger } from '../../adapters/logger.js';
import { ReconcileLoop } from '../../adapters/reconcile-loop.js';
import type { TimerClock } from '../../core/clock.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import type { ManagerPool } from '../../manager/link.js';

/** What the feed needs of the worker. */
export interface AssignmentTarget {
  setAssignments(list: unknown, opts?: { managed?: boolean }): unknown;
}

export interface AssignmentFeedOptions {
  clock: TimerClock;
  log: Logger;
  worker: AssignmentTarget;
  /**
   * How long the manager may hold a request when nothing changed (ms), default 10000. It bounds
   * how stale a list can be if a store watch silently missed a change, and how often an idle node
   * asks (0.1 request/s instead of the poll's 1).
   */
  waitMs?: number;
  /** Pause after a failed request (ms), default 1000. */
  retryMs?: number;
  /** In poll mode, try the watch again after this long (ms), default 60000. */
  recheckMs?: number;
}

/** The manager's answer, checked before use (a newer manager may add fields; these two must be there). */
function parseAnswer(r: unknown): { token: string; assignments: unknown[] } {
  const o = r as { token?: unknown; assignments?: unknown } | null;
  if (!o || typeof o.token !== 'string' || !o.token.length || o.token.length > 128 || !Array.isArray(o.assignments)) {
    throw new MeshError('MESHD_INTERNAL', 'the manager\'s assignment watch answered without a token and a list');
  }
  return { token: o.token, assignments: o.assignments };
}

export class AssignmentFeed {
  private readonly loop: ReconcileLoop<'watch'>;
  private abort: AbortController | undefined;
  private token: string | null = null;
  private lastText = '';
  private stopped = false;
  /** `watch` while the manager pushes; `poll` while it has no watch route (the link's round fetches the list). */
  mode: 'watch' | 'poll' = 'watch';
  lastError: string | null = null;
  /** Lists received from the watch, and how many of them changed anything. */
  readonly counters = { answers: 0, changed: 0 };

  constructor(private readonly pool: Pick<ManagerPool, 'call'>, private readonly o: AssignmentFeedOptions) {
    this.loop = new ReconcileLoop<'watch'>({
      clock: o.clock,
      run: () => this.round(),
      // round() catches its own errors; this is for a bug in it: retried with back-off.
      onError: (e) => o.log.error({ err: e }, 'assignment watch round threw'),
    });
  }

  start(): void {
    this.loop.mark('watch');
  }

  /** Cancels the request in flight; resolves when its round has ended (nothing is applied after this). */
  stop(): Promise<void> {
    this.stopped = true;
    this.abort?.abort();
    return this.loop.stop();
  }

  /**
   * The pool moved to another manager (the dispatcher round found this one unreachable, or a follower
   * named the leader): a request held by the old manager is cancelled and asked again of the new one,
   * instead of hanging until its idle limit on a manager that may be stopped or cut off.
   */
  redirect(): void {
    this.abort?.abort();
  }

  /** Hands `list` to the worker unless it is the one applied last. */
  apply(list: unknown): void {
    const text = JSON.stringify(list);
    if (text === this.lastText) return;
    this.o.worker.setAssignments(list, { managed: true });
    this.lastText = text;
  }

  status(): Record<string, unknown> {
    return { mode: this.mode, token: this.token, lastError: this.lastError, ...this.counters };
  }

  private async round(): Promise<void> {
    const waitMs = this.o.waitMs ?? 10_000;
    const ctl = new AbortController();
    this.abort = ctl;
    const q = `waitMs=${waitMs}${this.token !== null ? `&known=${encodeURIComponent(this.token)}` : ''}`;
    try {
      // The request's idle limit: the manager's wait plus room for a slow commit queue.
      const r = parseAnswer(await this.pool.call('GET', `/v1/dispatcher/assignments/watch?${q}`, undefined, { timeoutMs: waitMs + 15_000, signal: ctl.signal }));
      if (this.stopped) return;
      this.counters.answers++;
      if (r.token !== this.token) this.counters.changed++;
      this.apply(r.assignments);
      this.token = r.token;
      this.mode = 'watch';
      if (this.lastError) this.o.log.info('assignment watch answering again');
      this.lastError = null;
      this.loop.mark('watch');
    } catch (e) {
      if (this.stopped) return;
      const err = toMeshError(e);
      if (err.code === 'MESHD_CANCELLED') {
        this.loop.mark('watch'); // redirect(): ask the pool's new current manager now
        return;
      }
      if (err.code === 'MESHD_UNKNOWN_ROUTE') {
        if (this.mode !== 'poll') this.o.log.info('the manager has no assignment watch: polling for assignments');
        this.mode = 'poll';
        this.loop.mark('watch', this.o.recheckMs ?? 60_000);
        return;
      }
      if (err.message !== this.lastError) this.o.log.warn({ err: err.message }, 'assignment watch failed');
      this.lastError = err.message;
      this.loop.mark('watch', this.o.retryMs ?? 1000);
    } finally {
      if (this.abort === ctl) this.abort = undefined;
    }
  }
}
