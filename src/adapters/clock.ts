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
