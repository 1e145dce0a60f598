#!/usr/bin/env node
// npm run bench -- NAME [args...]: runs dist/bench/NAME.js (after setup/build).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
const root = new URL('..', import.meta.url).pathname;
const [name, ...rest] = process.argv.slice(2);
const avail = existsSync(join(root, 'dist/bench')) ? readdirSync(join(root, 'dist/bench')).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)) : [];
if (!name || !avail.includes(name)) {
  console.error(`usage: npm run bench -- NAME   (available: ${avail.join(', ') || 'none'})`);
  process.exit(2);
}
// benchmarks need their real peers too: dnsperf + dnsmasq (dns), wrk (lb), Go + memberlist (gossip)
const BENCH_PKGS = 'dnsperf dnsmasq wrk curl golang-go golang-github-hashicorp-memberlist-dev';
const setup = spawnSync('bash', [join(root, 'native-scripts/setup.sh')], { stdio: 'inherit', env: { ...process.env, MESHD_EXTRA_PKGS: BENCH_PKGS } });
if (setup.status !== 0) process.exit(setup.status ?? 1);
const r = spawnSync(process.execPath, [join(root, 'dist/bench', name + '.js'), ...rest], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
