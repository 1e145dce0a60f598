/**
 * meshd as users install it (issue 16 §2): `npm pack` of this checkout, `npm install -g` of the
 * tarball into a fresh prefix (only Node, npm and Debian's packages: better-sqlite3 compiles
 * against Debian's Node headers), then a 3-node lab run ENTIRELY from the installed files: the
 * installed netctl drives it and starts the installed meshd in each host namespace (`lab up
 * --meshd`), each with a config the installed `meshd --check-config` accepts. Acceptance as the
 * demo's: a cluster of three, an overlay network, the built-in whoami (netns runtime) published
 * on 8080 and answered through the routing mesh from the lab client on every node.
 *
 * The install compiles better-sqlite3 (~2 min here): the prefix is kept per tarball digest in
 * /var/tmp/meshd-install-test, so a re-run of unchanged sources skips it; a changed tarball
 * removes the old prefix and installs afresh.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../helpers/cli.js';
import { waitFor } from '../../helpers/lab.js';
import { VERSION } from '../../../src/version.js';

const LAB = 'mi16';
const CACHE = '/var/tmp/meshd-install-test';

function run(argv: string[], opts: { cwd?: string; timeoutMs?: number; input?: string } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, input: opts.input, env: { ...process.env, MESHD_BIN: '' } });
  return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}
function ok(argv: string[], opts: Parameters<typeof run>[1] = {}): string {
  const r = run(argv, opts);
  assert.equal(r.code, 0, `${argv.join(' ')} → exit ${r.code}\n${r.stderr.slice(-2000)}\n${r.stdout.slice(-1000)}`);
  return r.stdout;
}

let prefix = '';
const bin = (name: string): string => join(prefix, 'bin', name);
const netctl = (...args: string[]) => run([bin('netctl'), '--lab', LAB, ...args], { timeoutMs: 120_000 });

after(() => {
  if (prefix) run([bin('netctl'), 'lab', 'down', '--name', LAB]);
});

test('npm pack → npm install -g into a fresh prefix: meshd and netctl on PATH, the unit and the documented config shipped', { timeout: 900_000 }, () => {
  // The bundles from the current sources (what `npm pack`'s prepack builds after tsc), then the tarball.
  ok([process.execPath, join(ROOT, 'scripts', 'bundle.mjs')]);
  const packDir = mkdtempSync('/tmp/meshd-pack-');
  try {
    const tgzName = ok(['npm', 'pack', '--ignore-scripts', '--pack-destination', packDir, '--loglevel=error']).trim().split('\n').pop()!;
    const tgz = join(packDir, tgzName);
    const files = ok(['tar', '-tzf', tgz]).split('\n');
    for (const f of ['package/dist/src/bin/meshd.js', 'package/dist/src/bin/netctl.js', 'package/native-scripts/meshd.service', 'package/native-scripts/meshd.example.json', 'package/native-scripts/meshd.example.md']) {
      assert.ok(files.includes(f), `the tarball holds ${f}`);
    }
    assert.ok(!files.some((f) => f.startsWith('package/dist/test') || f.startsWith('package/src/') || f.endsWith('.map')), 'no tests, sources or source maps in the package');
    const digest = createHash('sha256').update(readFileSync(tgz)).digest('hex').slice(0, 16);
    prefix = join(CACHE, digest);
    if (!existsSync(join(prefix, '.installed'))) {
      mkdirSync(CACHE, { recursive: true });
      for (const old of readdirSync(CACHE)) rmSync(join(CACHE, old), { recursive: true, force: true });
      ok(['npm', 'install', '-g', '--prefix', prefix, '--allow-scripts=better-sqlite3,protobufjs', '--no-audit', '--no-fund', '--loglevel=error', tgz], { timeoutMs: 840_000 });
      writeFileSync(join(prefix, '.installed'), `${tgz}\n`);
    }
  } finally {
    rmSync(packDir, { recursive: true, force: true });
  }
  const pathEnv = `${join(prefix, 'bin')}:/usr/bin:/bin`;
  assert.equal(ok(['env', `PATH=${pathEnv}`, 'meshd', '--version']).trim(), VERSION, 'meshd is on PATH');
  assert.match(ok(['env', `PATH=${pathEnv}`, 'netctl', '--help']), /Usage: netctl/, 'netctl is on PATH');
  const pkg = join(prefix, 'lib', 'node_modules', 'meshd');
  // the package carries no copy of the code the bundles hold
  assert.deepEqual(readdirSync(join(pkg, 'dist')), ['src']);
  const unit = readFileSync(join(pkg, 'native-scripts', 'meshd.service'), 'utf8');
  assert.match(unit, /^ExecStart=meshd --config \/etc\/meshd\/meshd\.json$/m);
  const eff = JSON.parse(ok([bin('meshd'), '--check-config', join(pkg, 'native-scripts', 'meshd.example.json')])) as { gossip: { effective: unknown } };
  assert.ok(eff.gossip.effective, 'the shipped example passes --check-config and prints derived values');
});

test('a 3-node lab from the installed binaries: membership, and a published service through the mesh (netns runtime)', { timeout: 300_000 }, async () => {
  assert.ok(prefix, 'the package is installed (previous test)');
  run([bin('netctl'), 'lab', 'down', '--name', LAB]);
  const up = run([bin('netctl'), 'lab', 'up', '--nodes', '3', '--name', LAB, '--cluster', '--meshd', bin('meshd'), '--format', 'json'], { timeoutMs: 180_000 });
  assert.equal(up.code, 0, up.stderr);
  const nodes = (JSON.parse(up.stdout) as { nodes: Array<{ name: string; pid: number; underlay: string }> }).nodes;
  assert.equal(nodes.length, 3);
  for (const n of nodes) {
    // the agent is the installed one, and its config is one the installed meshd accepts
    const cmd = readFileSync(`/proc/${n.pid}/cmdline`, 'utf8').split('\0');
    assert.ok(cmd.includes(bin('meshd')) || cmd.some((a) => a.startsWith(join(prefix, 'lib', 'node_modules', 'meshd'))), `${n.name} runs the installed meshd: ${cmd.join(' ')}`);
    const cfg = cmd[cmd.indexOf('--config') + 1]!;
    ok([bin('meshd'), '--check-config', cfg]);
    // logs: one JSON object per line on stdout
    const log = readFileSync(`/run/meshd/${LAB}/${n.name}.log`, 'utf8').trim().split('\n');
    for (const line of log.slice(0, 20)) assert.doesNotThrow(() => JSON.parse(line), `log line is JSON: ${line}`);
  }
  await waitFor('3 nodes Ready in node ls', () => {
    const r = netctl('--node', 'n1', 'node', 'ls', '--format', 'json');
    const list = r.code === 0 ? (JSON.parse(r.stdout) as Array<{ status?: string; hostname?: string }>) : [];
    return list.length === 3 && list.every((x) => JSON.stringify(x).toLowerCase().includes('ready')) ? list : undefined;
  }, 60_000, 500);
  for (const n of ['n1', 'n2', 'n3']) {
    await waitFor(`${n} sees 3 alive gossip members`, () => {
      const r = netctl('--node', n, 'debug', 'members', '--format', 'json');
      return r.code === 0 && (r.stdout.match(/"alive"/g) ?? []).length === 3 ? r.stdout : undefined;
    }, 30_000, 500);
  }
  ok([bin('netctl'), '--lab', LAB, '--node', 'n1', 'network', 'create', '-d', 'overlay', 'app']);
  ok([bin('netctl'), '--lab', LAB, '--node', 'n1', 'service', 'create', '--name', 'who', '--replicas', '2', '-p', '8080:80', '--network', 'app', 'whoami'], { timeoutMs: 120_000 });
  for (const n of nodes) {
    await waitFor(`http://${n.underlay}:8080/ answers from the lab client (routing mesh on ${n.name})`, () => {
      const r = run([bin('netctl'), 'lab', 'client', '--name', LAB, '--', 'curl', '-s', '-m', '2', `http://${n.underlay}:8080/`]);
      return r.code === 0 && /task: who\.\d/.test(r.stdout) ? r.stdout : undefined;
    }, 60_000, 500);
  }
  const down = run([bin('netctl'), 'lab', 'down', '--name', LAB]);
  assert.equal(down.code, 0, down.stderr);
});
