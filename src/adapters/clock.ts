import { performance } from 'node:perf_hooks';
import type { TimerClock } from '../core/clock.js';

/** The process's monotonic clock with real timers, for composition roots. */
export const systemClock: TimerClock = {
  now: () => performance.now(),
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  },
};

/**
 * One re-armable timer whose callback runs once its time has passed AND the input that was already waiting by
 * then has been read: the timeout only schedules the callback for the check phase (setImmediate), after the
 * poll phase that reads sockets.
 *
 * Why (issue 18 §1, SWIM under CPU starvation): Node runs expired timers before it polls for I/O. After any long
 * turn — a GC pause, a big push-pull merge, a burst of table events on a 2-core machine running 10 agents — a probe
 * or suspicion deadline that expired during the stall fires BEFORE an ack or a refutation that arrived in time and
 * sits unread in the socket buffer (test/unit/adapters/input-aware-timer.test.ts shows the order): the prober
 * suspects a healthy member and lowers its own health, a suspicion can time out into a false death. memberlist does
 * not have this hazard (its packet reader is a goroutine of its own). Deferring the deadline's handling behind one
 * poll costs nothing when the loop is idle (the poll returns at once) and makes a deadline judge only what truly did
 * not arrive. Measured honestly: in a 10-node lab at 100 endpoint changes/s (load 16–25, 3 + 3 interleaved 60 s
 * rounds) the false deaths logged were 45 with plain timers and 48 with this one — the deaths there come from
 * agents that answer late, not from answers read late; this removes one cause, not the starvation.
 *
 * `arm` while the callback is already scheduled (its time passed, waiting for the check phase) keeps it: input
 * handled meanwhile re-arms on every datagram, and cancelling there would postpone the deadline for as long as
 * datagrams keep coming. The callback re-arms when it wants the next one.
 */
export class InputAwareTimer {
  private timeout: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(private readonly fn: () => void) {}

  /** (Re)arms for `ms` from now, unless the callback is already due (then it runs this turn, after the input). */
  arm(ms: number): void {
    if (this.immediate) return;
    if (this.timeout) clearTimeout(this.timeout);
    this.timeout = setTimeout(() => {
      this.timeout = undefined;
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.fn();
      });
    }, Math.max(0, ms));
  }

  cancel(): void {
    if (this.timeout) clearTimeout(this.timeout);
    if (this.immediate) clearImmediate(this.immediate);
    this.timeout = undefined;
    this.immediate = undefined;
  }
}
