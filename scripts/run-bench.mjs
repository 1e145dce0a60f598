#!/usr/bin/env node
// npm run bench -- NAME [args...]: runs dist/bench/NAME.js (after setup/build).
// A bench writes bench/results/NAME.json only when its figures hold from round to round (bench/lib/rounds.ts);
// otherwise it writes NAME.rejected.json, says why and exits 1 — this script passes that exit code on.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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
// Said before the run, not enforced: the rounds' spread check decides whether the figures hold.
const load = loadavg()[0];
if (load > cpus().length) console.error(`bench ${name}: load average ${load.toFixed(1)} on ${cpus().length} CPUs — other work will move the figures; expect the spread check to reject them`);
const r = spawnSync(process.execPath, [join(root, 'dist/bench', name + '.js'), ...rest], { stdio: 'inherit', cwd: root });
if (r.status === 1 && existsSync(join(root, 'bench/results', `${name}.rejected.json`))) console.error(`bench ${name}: result rejected (see above); bench/results/${name}.json left as it was`);
process.exit(r.status ?? 1);
