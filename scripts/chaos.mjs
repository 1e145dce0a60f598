#!/usr/bin/env node
// npm run chaos -- --minutes M --seed S: the chaos soak (bench/chaos/main.ts), not part of npm test.
// Builds first when dist/ is missing or older than a source; Ctrl-C reaches the soak (same process
// group), which removes its lab and etcd before exiting.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
const root = new URL('..', import.meta.url).pathname;
const main = join(root, 'dist/bench/chaos/main.js');
const newest = (dir) => readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
  const p = join(dir, e.name);
  return Math.max(m, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
}, 0);
if (!existsSync(main) || Math.max(newest(join(root, 'src')), newest(join(root, 'bench/chaos'))) > statSync(main).mtimeMs) {
  console.error('chaos: building (tsc)');
  const b = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
const child = spawn(process.execPath, [main, ...process.argv.slice(2)], { stdio: 'inherit', cwd: root });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, sig) => process.exit(code ?? (sig ? 130 : 1)));
