/**
 * Time is injected (quinn-proto's model): cores take `now` (milliseconds, monotonic)
 * as an argument or through a Clock; they never read the wall clock themselves.
 */
export interface Clock {
  /** Monotonic milliseconds. Only differences are meaningful. */
  now(): number;
}

/** A pending timer; `cancel()` is idempotent. */
export interface Timer {
  cancel(): void;
}

/**
 * A clock that can also call back later. Shells (agent subsystems, the reconcile loop) take this
 * instead of calling setTimeout, so their tests step simulated time (ManualClock) and never sleep.
 */
export interface TimerClock extends Clock {
  /** Calls `fn` once, `ms` from now (0: as soon as possible, never synchronously). */
  setTimer(ms: number, fn: () => void): Timer;
}

/** A clock tests step by hand; its timers fire, in deadline order, as `advance`/`set` pass them. */
export class ManualClock implements TimerClock {
  private t: number;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): Timer {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return { cancel: () => void this.timers.delete(id) };
  }
  /** Timers not fired yet. */
  get pendingTimers(): number {
    return this.timers.size;
  }
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`cannot go back in time: ${ms}`);
    this.set(this.t + ms);
    return this.t;
  }
  set(ms: number): void {
    if (ms < this.t) throw new RangeError(`cannot go back in time: ${ms} < ${this.t}`);
    // Fire due timers one at a time in (deadline, creation) order; a timer set by a callback for a
    // time still within the step fires in the same step.
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= ms && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = ms;
  }
}

/** Small deterministic PRNG (mulberry32) for cores and seeded simulations. */
export type Rng = () => number;
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
