import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { CHILD_TICK_MS, childrenCpuMs, exposeGc, processCpuMs, threadCpuMs } from '../../../bench/lib/cpu.js';

test('threadCpuMs: this thread\'s CPU grows with work done on it, and by no more than the wall time taken', () => {
  const t0 = threadCpuMs();
  const w0 = performance.now();
  let x = 0;
  while (performance.now() - w0 < 30) x += Math.sqrt(x + 1);
  const used = threadCpuMs() - t0;
  const wall = performance.now() - w0;
  assert.ok(x > 0);
  assert.ok(used > 0, `thread CPU did not move (${used} ms)`);
  assert.ok(used <= wall + 1, `thread CPU ${used} ms > wall ${wall} ms`);
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
