/**
 * Cost of binding the embedded DNS's sockets (127.0.0.11:53, UDP + TCP) inside a task namespace
 * through bindInNetns (src/adapters/netns-sockets.ts), one namespace after another as the agent's
 * sandbox binder does: N fresh namespaces `nbb-<pid>-<i>`, each bound, checked (both sockets report
 * the address) and closed. Prints per-bind wall ms (min / median / p90 / max / total) and one line
 * `BENCH-NETNS-BIND {json}`. Not a side-by-side bench (there is no peer): it exists to compare binder
 * implementations, natively and inside the IPVS VM where every process start costs seconds:
 *
 *   node dist/bench/netns-bind.js [N=20]
 *   native-scripts/vm/run.sh env NODE_OPTIONS=--import=$PWD/dist/test/vm/v8-flags.js node dist/bench/netns-bind.js 20
 *
 * (the second form is what the VM mesh test's agents run under). Namespaces are removed also on failure.
 */
import { loadavg } from 'node:os';
import { bindInNetns } from '../src/adapters/netns-sockets.js';
import { realExec } from '../src/adapters/exec.js';

const N = Number(process.argv[2] ?? 20);

async function main(): Promise<void> {
  const names = Array.from({ length: N }, (_, i) => `nbb-${process.pid}-${i}`);
  const ms: number[] = [];
  const load0 = loadavg();
  try {
    for (const ns of names) {
      await realExec.check('ip', ['netns', 'add', ns]);
      await realExec.check('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    for (const ns of names) {
      const t0 = performance.now();
      const s = await bindInNetns(ns, '127.0.0.11', 53);
      ms.push(performance.now() - t0);
      const u = s.udp.address();
      const t = s.tcp.address();
      if (u.address !== '127.0.0.11' || u.port !== 53 || typeof t !== 'object' || t?.port !== 53) throw new Error(`${ns}: wrong sockets ${JSON.stringify([u, t])}`);
      s.udp.close();
      await new Promise<void>((res) => s.tcp.close(() => res()));
    }
  } finally {
    for (const ns of names) await realExec.run('ip', ['netns', 'del', ns]);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  const q = (p: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
  const res = { n: N, minMs: q(0), medianMs: q(0.5), p90Ms: q(0.9), maxMs: q(1), totalMs: Math.round(ms.reduce((a, b) => a + b, 0)), firstMs: Math.round(ms[0]!), loadAverageAtStart: load0, loadAverageAtEnd: loadavg() };
  console.log(`netns bind × ${N}: min ${res.minMs} ms, median ${res.medianMs} ms, p90 ${res.p90Ms} ms, max ${res.maxMs} ms, total ${res.totalMs} ms (first ${res.firstMs} ms)`);
  console.log(`BENCH-NETNS-BIND ${JSON.stringify(res)}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
