/**
 * CPU-time clocks for benches whose figure is a cost (issue 18 §2): on this shared 2-core machine a wall
 * clock counts the time a run waited for a CPU behind other people's work, which is the machine's figure,
 * not ours. Linux gives:
 * - the calling thread's CPU in ns (/proc/thread-self/schedstat, first field; CONFIG_SCHED_INFO) — free of
 *   V8's helper threads (concurrent sweeping, background compiles), whose work lands in a sample at random;
 * - the whole process's CPU (process.cpuUsage: µs, every thread);
 * - the CPU of reaped children (/proc/self/stat cutime + cstime): summed in ns by the kernel, shown in
 *   clock ticks (10 ms), so a figure over children is known to ± CHILD_TICK_MS.
 */
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Resolution of the children's CPU figure (USER_HZ = 100). */
export const CHILD_TICK_MS = 10;

/** CPU ms of the calling thread since it started. Throws when the kernel has no schedstat (say so, never guess). */
export function threadCpuMs(): number {
  const ns = Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  if (!(ns > 0)) throw new Error('/proc/thread-self/schedstat gives no CPU time here (kernel without CONFIG_SCHED_INFO?)');
  return ns / 1e6;
}

/** CPU ms of this process, every thread (user + system). */
export function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** CPU ms of this process's reaped children (and theirs), in whole clock ticks. */
export function childrenCpuMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[13]) + Number(rest[14])) * CHILD_TICK_MS;
}

/**
 * V8's gc() without a command-line flag (run-bench.mjs starts `node FILE`): the flag is set, then a new
 * context carries the function. Used to start every timed sample from a collected heap, so the garbage of
 * building inputs is not collected inside a sample at a random moment.
 */
export function exposeGc(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
