/**
 * Exact CPU time of the child processes a bench spawns (issue 18 §2). `/proc/self/stat`'s cutime + cstime
 * (bench/lib/cpu.ts childrenCpuMs) is shown in 10 ms clock ticks, so a 40 ms `iptables-restore` or `nft -f`
 * is known only to ±25 %; a cgroup's CPU counter is kept in nanoseconds by the scheduler itself.
 *
 * A group is a directory under the cpuacct hierarchy (cgroup v1: `cpuacct.usage`, ns) or under the cgroup2
 * mount (`cpu.stat` usage_usec). Its `exec` runs every command through `sh -c 'echo $$ > cgroup.procs && exec
 * CMD'`: the shell joins the group, then becomes CMD, so the group counts CMD (and its threads and
 * children) from its first instruction, and none of the bench's own threads or other people's work.
 * A command for a network namespace runs under `nsenter --net` (not `ip netns exec`, whose /sys remount hides
 * the cgroup mount). Only the group's own directory is created and removed; nothing else is touched.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { realExec, type Exec } from '../../src/adapters/exec.js';

const V1 = '/sys/fs/cgroup/cpuacct';
const V2_CANDIDATES = ['/sys/fs/cgroup/unified', '/sys/fs/cgroup'];

export interface CpuGroup {
  /** realExec whose every command runs inside the group (also under `netns`). */
  exec: Exec;
  /** CPU ms used so far by every process that ran in the group (user + system, ns resolution). */
  usageMs(): number;
  /** The group's cgroup.procs (for a process started another way: write its pid there before it works). */
  procs: string;
  /** Removes the group's directory (its processes must have exited). */
  remove(): void;
}

/** The JOIN-then-exec wrapper: `$0` is the group's cgroup.procs, "$@" the command. */
const JOIN = 'echo $$ > "$0" && exec "$@"';

/** Makes a group `name` (unique per process: the pid is appended). Throws, saying why, when neither hierarchy is writable. */
export function cpuGroup(name: string): CpuGroup {
  const leaf = `${name}-${process.pid}`;
  let dir: string;
  let usageMs: () => number;
  if (existsSync(join(V1, 'cpuacct.usage'))) {
    dir = join(V1, leaf);
    usageMs = () => Number(readFileSync(join(dir, 'cpuacct.usage'), 'utf8').trim()) / 1e6;
  } else {
    const root = V2_CANDIDATES.find((d) => existsSync(join(d, 'cgroup.procs')) && existsSync(join(d, 'cgroup.controllers')));
    if (!root) throw new Error('no cpuacct (cgroup v1) nor cgroup2 hierarchy mounted: cannot measure children CPU exactly');
    dir = join(root, leaf);
    usageMs = () => Number(/usage_usec (\d+)/.exec(readFileSync(join(dir, 'cpu.stat'), 'utf8'))?.[1] ?? NaN) / 1e3;
  }
  mkdirSync(dir);
  const procs = join(dir, 'cgroup.procs');
  if (!(usageMs() >= 0)) throw new Error(`cgroup ${dir} gives no CPU counter`);
  // `ip netns exec` remounts /sys for the namespace, hiding the cgroup mount: enter only the network
  // namespace (nsenter; nft and iptables-restore need nothing else of `ip netns exec`), then join and exec.
  const argv = (cmd: string, args: readonly string[], netns?: string): [string, string[]] => {
    const inner = ['sh', '-c', JOIN, procs, cmd, ...args];
    return netns ? ['nsenter', [`--net=/run/netns/${netns}`, ...inner]] : [inner[0]!, inner.slice(1)];
  };
  const exec: Exec = {
    run: (cmd, args, opts = {}) => { const [c, a] = argv(cmd, args, opts.netns); return realExec.run(c, a, { ...opts, netns: undefined }); },
    check: (cmd, args, opts = {}) => { const [c, a] = argv(cmd, args, opts.netns); return realExec.check(c, a, { ...opts, netns: undefined }); },
  };
  return { exec, usageMs, procs, remove: () => rmdirSync(dir) };
}
