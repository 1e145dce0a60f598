/**
 * Shared shape of bench/results/NAME.json (ARCHITECTURE §3): each bench runs side by side
 * against a real peer in one run, prints a table and writes its figures and ratios.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchRow {
  /** What was measured, e.g. "qps, 1 name". */
  metric: string;
  unit: string;
  ours: number;
  /** The real peer's figure in the same run (null when the peer could not run; say why in `note`). */
  peer: number | null;
  peerName: string;
  /** ours / peer (or peer / ours for lower-is-better metrics; see `better`). */
  ratio: number | null;
  better: 'higher' | 'lower';
  note?: string;
}

export function row(metric: string, unit: string, ours: number, peer: number | null, peerName: string, better: 'higher' | 'lower', note?: string): BenchRow {
  const ratio = peer == null || peer === 0 || ours === 0 ? null : better === 'higher' ? ours / peer : peer / ours;
  return { metric, unit, ours, peer, peerName, ratio: ratio == null ? null : Math.round(ratio * 1000) / 1000, better, ...(note ? { note } : {}) };
}

export function writeResults(name: string, rows: BenchRow[], extra: Record<string, unknown> = {}): string {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const doc = {
    name,
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model, kernel: release(), node: process.version },
    note: 'ratio > 1 means meshd is better than the peer on that metric',
    rows,
    ...extra,
  };
  writeFileSync(file, JSON.stringify(doc, null, 2) + '\n');
  console.table(rows.map((r) => ({ metric: r.metric, unit: r.unit, ours: r.ours, [`peer`]: r.peer, peerName: r.peerName, ratio: r.ratio })));
  console.log(`wrote ${file}`);
  return file;
}
