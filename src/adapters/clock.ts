import { performance } from 'node:perf_hooks';
import type { Clock } from '../core/clock.js';

/** The process's monotonic clock, for composition roots. */
export const systemClock: Clock = { now: () => performance.now() };
