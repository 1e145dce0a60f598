import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../src/core/clock.js';
import { ReconcileLoop } from '../../../src/adapters/reconcile-loop.js';

/** Lets pending promise callbacks run (no real time passes). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

function deferred(): { p: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const p = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { p, resolve, reject };
}

describe('ReconcileLoop (the shell, on a ManualClock)', () => {
  test('a mark runs after its delay, with every key marked meanwhile, in one run', async () => {
    const clock = new ManualClock();
    const runs: string[][] = [];
    const loop = new ReconcileLoop<string>({ clock, run: async (k) => void runs.push(k.sort()) });
    loop.mark('a', 30);
    loop.mark('b', 30);
    clock.advance(29);
    await settle();
    assert.deepEqual(runs, []);
    clock.advance(1);
    await settle();
    assert.deepEqual(runs, [['a', 'b']]);
    await loop.idle();
    assert.equal(clock.pendingTimers, 0);
  });

  test('kicks during a run: exactly one more run after it, never two at once', async () => {
    const clock = new ManualClock();
    let inFlight = 0;
    let maxInFlight = 0;
    const gates: Array<ReturnType<typeof deferred>> = [];
    const runs: string[][] = [];
    const loop = new ReconcileLoop<string>({
      clock,
      run: async (k) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        runs.push(k);
        const g = deferred();
        gates.push(g);
        await g.p;
        inFlight--;
      },
    });
    loop.mark('a');
    clock.advance(0);
    await settle();
    for (const k of ['b', 'c', 'd']) loop.mark(k);
    clock.advance(0);
    await settle();
    assert.equal(runs.length, 1);
    gates[0]!.resolve();
    await settle();
    clock.advance(0);
    await settle();
    assert.deepEqual(runs, [['a'], ['b', 'c', 'd']]);
    gates[1]!.resolve();
    await loop.idle();
    assert.equal(maxInFlight, 1);
  });

  test('a run that completes without awaiting anything does not wedge the loop (the 2273f8d shape)', async () => {
    const clock = new ManualClock();
    let n = 0;
    const loop = new ReconcileLoop<string>({ clock, run: () => { n++; return Promise.resolve(); } });
    for (let i = 0; i < 5; i++) {
      loop.mark('x');
      clock.advance(0);
      await settle();
    }
    assert.equal(n, 5);
    assert.equal(loop.running, false);
    await loop.idle();
  });

  test('a throwing run is reported and retried with doubling back-off until it succeeds', async () => {
    const clock = new ManualClock();
    let fail = 3;
    const errors: string[] = [];
    const at: number[] = [];
    const loop = new ReconcileLoop<string>({
      clock, config: { minBackoffMs: 100, maxBackoffMs: 250 },
      onError: (e) => errors.push((e as Error).message),
      run: async () => {
        at.push(clock.now());
        if (fail-- > 0) throw new Error('boom');
      },
    });
    loop.mark('x');
    for (let t = 0; t < 1000; t += 10) {
      clock.advance(10);
      await settle();
    }
    // The first failure is seen when its step ends (t=10); retries then follow 100, 200 and 250 (capped) ms after each failure.
    assert.deepEqual(at, [0, 110, 310, 560]);
    assert.equal(errors.length, 3);
    assert.equal(loop.consecutiveFailures, 0);
    await loop.idle();
  });

  test('partial failure: only the returned keys are retried', async () => {
    const clock = new ManualClock();
    const runs: string[][] = [];
    const loop = new ReconcileLoop<string>({
      clock, config: { minBackoffMs: 50, maxBackoffMs: 50 },
      run: async (k) => {
        runs.push([...k].sort());
        return runs.length === 1 ? ['b'] : [];
      },
    });
    loop.mark('a');
    loop.mark('b');
    clock.advance(0);
    await settle();
    clock.advance(50);
    await settle();
    assert.deepEqual(runs, [['a', 'b'], ['b']]);
  });

  test('stop during a run: the run finishes, stop() waits for it, nothing runs after', async () => {
    const clock = new ManualClock();
    const g = deferred();
    let runs = 0;
    let finished = false;
    const loop = new ReconcileLoop<string>({
      clock,
      run: async () => {
        runs++;
        await g.p;
        finished = true;
      },
    });
    loop.mark('a');
    clock.advance(0);
    await settle();
    loop.mark('b');
    const stopped = loop.stop();
    let stopDone = false;
    void stopped.then(() => (stopDone = true));
    await settle();
    assert.equal(stopDone, false, 'stop waits for the run in flight');
    g.resolve();
    await stopped;
    assert.equal(finished, true);
    loop.mark('c');
    clock.advance(1000);
    await settle();
    assert.equal(runs, 1);
    assert.equal(clock.pendingTimers, 0);
  });

  test('idle() waits through back-off until the key succeeds', async () => {
    const clock = new ManualClock();
    let fail = true;
    const loop = new ReconcileLoop<string>({
      clock, config: { minBackoffMs: 100, maxBackoffMs: 100 },
      run: async () => {
        if (fail) throw new Error('once');
      },
    });
    loop.mark('a');
    let idle = false;
    void loop.idle().then(() => (idle = true));
    clock.advance(0);
    await settle();
    assert.equal(idle, false);
    fail = false;
    clock.advance(100);
    await settle();
    assert.equal(idle, true);
  });
});
