/**
 * The one "wait until" helper for tests that must wait on real processes (kernel, Docker, other
 * agents): polls `fn` until it returns a truthy value and returns it; on timeout it throws naming
 * what it waited for and the last value `fn` returned (or the last error it threw), so a failure
 * says what the world looked like instead of just "timed out". Unit tests of code that takes a
 * clock step a ManualClock instead and need no waiting at all.
 */
import { inspect } from 'node:util';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until<T>(what: string, fn: () => T | Promise<T>, ms = 5000, stepMs = 50): Promise<T> {
  const end = Date.now() + ms;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await fn();
      lastErr = undefined;
      if (last) return last;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() >= end) {
      const seen = lastErr !== undefined ? `last error: ${lastErr instanceof Error ? lastErr.message : inspect(lastErr)}` : `last value: ${inspect(last, { depth: 4, breakLength: Infinity })}`;
      throw new Error(`timed out after ${ms} ms waiting for ${what}; ${seen}`);
    }
    await sleep(stepMs);
  }
}
