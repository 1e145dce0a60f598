#!/usr/bin/env node
// Runs the compiled tests with node's built-in runner (its summary lines are what CI reads).
// Usage: node scripts/run-tests.mjs [unit|integration|<path fragment>...]
// Unit tests run first and in parallel; integration tests touch real kernel objects
// (namespaces, nftables) and run one file at a time.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
function walk(dir) {
  let out = [];
  let entries = [];
  try { entries = readdirSync(dir); } catch { return out; }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(walk(p));
    else if (p.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}
const args = process.argv.slice(2);
const want = (kind) => args.length === 0 || args.includes(kind);
const filters = args.filter((a) => a !== 'unit' && a !== 'integration');
const pick = (files) => (filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files);

let failed = false;
let ran = 0;
const suites = [
  ['unit', pick(walk(join(root, 'dist/test/unit'))), ['--test-concurrency=2']],
  ['integration', pick(walk(join(root, 'dist/test/integration'))), ['--test-concurrency=1']],
];
for (const [kind, files, extra] of suites) {
  if (!(want(kind) || filters.length) || files.length === 0) continue;
  ran += files.length;
  console.log(`\n# ${kind}: ${files.length} file(s)`);
  const r = spawnSync(process.execPath, ['--test', ...extra, '--test-reporter=spec', ...files], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) failed = true;
}
if (ran === 0) {
  // A filter that selects nothing is a typo, not a green run.
  console.error(`run-tests: no test file matches ${args.join(' ') || '(all)'}`);
  process.exit(2);
}
process.exit(failed ? 1 : 0);
