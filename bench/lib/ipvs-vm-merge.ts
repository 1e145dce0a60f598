/**
 * Merges sizes measured by a separate run of bench/lb-ipvs-vm.ts (its console log: the lines
 * `BENCH-IPVS-VM-SIZE {json}`) into the committed bench/results/lb.json: `ipvsVm.sizes[n]` and the
 * `IPVS in VM: …` rows of those sizes are replaced, every other size, row and field is kept.
 * Why: 10k services alone take about half an hour of emulated guest time, so they run on their own
 * (with their own VM settings and peer backends) instead of inside `npm run bench -- lb`, whose
 * BENCH_ONLY_IPVS_VM mode would replace the 1k/5k figures with the one size it ran. Each merged size
 * records the run it came from (`ipvsVm.runs[n]`: date, host load at start/end, VM settings, peers),
 * since only ratios within one VM run count.
 *
 *   node dist/bench/lib/ipvs-vm-merge.js LOG '{"date":…,"loadAverageAtStart":[…],…}'
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { row, type BenchRow } from './results.js';
import { EPS } from './lb-sync.js';

type Figures = { cold: number; resync: number; one: number };
interface SizeLine {
  n: number;
  ipvs: Figures;
  nftables: Figures;
  iptables: Figures;
  iptablesPeer?: Record<keyof Figures, string>;
  iptablesPeers?: Record<string, Partial<Figures>>;
}

const NOTE = 'inside the IPVS VM (qemu TCG software emulation): only ratios within this VM run count';

/** The rows bench/lb.ts makes for one size (same metric names, so they replace each other). */
export function sizeRows(f: SizeLine, reps: number): BenchRow[] {
  const label = `${f.n / 1000}k svc × ${EPS} ep`;
  const metrics: Array<[string, keyof Figures]> = [['full sync, cold', 'cold'], ['full resync over existing (IPVS: read-back + diff)', 'resync'], [`one-endpoint change (median of ${reps})`, 'one']];
  const rows: BenchRow[] = [];
  for (const [m, k] of metrics) {
    const peer = f.iptablesPeer?.[k] ?? 'iptables-restore';
    const what = k === 'one' ? `kube-proxy ≥1.26 minimal ${peer} --noflush (same VM)` : `kube-proxy-iptables-style ${peer} (same VM)`;
    rows.push(row(`IPVS in VM: ${m}, ${label}`, 'ms', f.ipvs[k], f.iptables[k], what, 'lower', NOTE));
    rows.push(row(`IPVS in VM: ${m}, ${label} vs meshd nftables`, 'ms', f.ipvs[k], f.nftables[k], 'meshd nftables dataplane (same VM)', 'lower', NOTE));
  }
  return rows;
}

function main(): void {
  const [logFile, runJson] = process.argv.slice(2);
  if (!logFile || !runJson) throw new Error('usage: ipvs-vm-merge LOG RUN_JSON');
  const run = JSON.parse(runJson) as Record<string, unknown>;
  const lines = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.startsWith('BENCH-IPVS-VM-SIZE ')).map((l) => JSON.parse(l.slice('BENCH-IPVS-VM-SIZE '.length)) as SizeLine);
  if (lines.length === 0) throw new Error(`${logFile}: no BENCH-IPVS-VM-SIZE line (the run measured no size)`);
  const file = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'results', 'lb.json');
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { rows: BenchRow[]; ipvsVm: { reps: number; sizes: Record<string, unknown>; runs?: Record<string, unknown> } };
  const reps = Number(run.reps ?? doc.ipvsVm.reps);
  for (const f of lines) {
    const { n, ...figures } = f;
    doc.ipvsVm.sizes[String(n)] = figures;
    doc.ipvsVm.runs = { ...doc.ipvsVm.runs, [String(n)]: run };
    const fresh = sizeRows(f, reps);
    const names = new Set(fresh.map((r) => r.metric));
    const kept = doc.rows.filter((r) => !names.has(r.metric));
    const at = kept.reduce((last, r, i) => (r.metric.startsWith('IPVS in VM:') ? i + 1 : last), kept.length);
    doc.rows = [...kept.slice(0, at), ...fresh, ...kept.slice(at)];
    console.log(`merged ${n}: ${fresh.map((r) => `${r.metric} ${r.ratio}`).join('; ')}`);
  }
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
}

main();
