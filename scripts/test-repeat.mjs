#!/usr/bin/env node
// Runs one compiled test file N times in a row and reports pass/fail counts and durations.
// Usage: npm run test:repeat -- FILE N   (FILE: a path fragment, e.g. manager/ha-lab)
// A test that fails by chance is a bug: this is how to count how often it does.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const [frag, nArg] = process.argv.slice(2);
const n = Number(nArg ?? '1');
if (!frag || !Number.isInteger(n) || n < 1) {
  console.error('usage: npm run test:repeat -- FILE N   (FILE: a test path fragment, N ≥ 1)');
  process.exit(2);
}
function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const files = walk(join(root, 'dist/test')).filter((f) => f.includes(frag));
if (files.length !== 1) {
  console.error(`test:repeat: "${frag}" selects ${files.length} test files${files.length ? `: ${files.map((f) => f.slice(root.length)).join(', ')}` : ''}; name exactly one`);
  process.exit(2);
}
const file = files[0];
const runs = [];
for (let i = 1; i <= n; i++) {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', file], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 28 });
  const ms = Date.now() - t0;
  const ok = r.status === 0;
  runs.push({ ok, ms });
  // The test's own figures (lines it prints as `# ...`), then the verdict.
  const notes = (r.stdout ?? '').split('\n').filter((l) => /^\s*# (?!(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms|Subtest)\b)/.test(l)).map((l) => `    ${l.trim()}`);
  console.log(`# run ${i}/${n}: ${ok ? 'pass' : 'FAIL'} in ${(ms / 1000).toFixed(1)} s${notes.length ? `\n${notes.join('\n')}` : ''}`);
  if (!ok) {
    // The whole output of a failing run is kept: a failure that happens by chance must be readable afterwards.
    const keep = join(tmpdir(), `test-repeat-${basename(file, '.test.js')}-${Date.now()}-run${i}.log`);
    writeFileSync(keep, `${r.stdout ?? ''}\n--- stderr ---\n${r.stderr ?? ''}`);
    console.log((r.stdout + r.stderr).split('\n').filter((l) => /✖|Error|timed out|#/.test(l)).slice(0, 60).join('\n'));
    console.log(`# run ${i}: full output kept in ${keep}`);
  }
}
const passed = runs.filter((r) => r.ok).length;
const secs = runs.map((r) => r.ms / 1000).sort((a, b) => a - b);
console.log(`# ${file.slice(root.length)}: ${passed}/${n} passed; duration min ${secs[0].toFixed(1)} s, median ${secs[Math.floor(secs.length / 2)].toFixed(1)} s, max ${secs.at(-1).toFixed(1)} s`);
console.log(`${passed} passed, ${n - passed} failed`);
process.exit(passed === n ? 0 : 1);
