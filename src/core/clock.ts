/**
 * Time is injected (quinn-proto's model): cores take `now` (milliseconds, monotonic)
 * as an argument or through a Clock; they never read the wall clock themselves.
 */
export interface Clock {
  /** Monotonic milliseconds. Only differences are meaningful. */
  now(): number;
}

/** A clock tests step by hand. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`cannot go back in time: ${ms}`);
    this.t += ms;
    return this.t;
  }
  set(ms: number): void {
    if (ms < this.t) throw new RangeError(`cannot go back in time: ${ms} < ${this.t}`);
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
