import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CHILD_TICK_MS, childrenCpuMs, exposeGc, processCpuMs, threadCpuMs } from '../../../bench/lib/cpu.js';

test('threadCpuMs: this thread\'s CPU grows with work done on it, and by no more than the wall time taken', () => {
  // The wall interval encloses both CPU reads. schedstat's figure is the thread's sum_exec_runtime, which the kernel
  // brings up to date at scheduler ticks and context switches only, so a read taken while the thread runs can lag by up
  // to one tick (4 ms at Debian's HZ=250): a clean-clone run saw 31.9 ms of CPU in 30.1 ms of wall with the old ±1 ms.
  const TICK_MS = 4;
  const w0 = performance.now();
  const t0 = threadCpuMs();
  let x = 0;
  while (performance.now() - w0 < 30) x += Math.sqrt(x + 1);
  const used = threadCpuMs() - t0;
  const wall = performance.now() - w0;
  assert.ok(x > 0);
  assert.ok(used > 0, `thread CPU did not move (${used} ms)`);
  assert.ok(used <= wall + TICK_MS, `thread CPU ${used} ms > wall ${wall} ms + one scheduler tick`);
  assert.ok(processCpuMs() > 0);
});

test('childrenCpuMs: whole clock ticks, never decreasing after a child is reaped', () => {
  const c0 = childrenCpuMs();
  spawnSync('sh', ['-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done']);
  const c1 = childrenCpuMs();
  assert.equal(c0 % CHILD_TICK_MS, 0);
  assert.equal(c1 % CHILD_TICK_MS, 0);
  assert.ok(c1 >= c0);
});

test('exposeGc gives a callable gc() without a command-line flag', () => {
  const gc = exposeGc();
  assert.equal(typeof gc, 'function');
  gc();
});
