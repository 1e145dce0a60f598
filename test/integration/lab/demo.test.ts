/**
 * `npm start` (netctl demo) end to end: the full walkthrough on a 3-node lab (cluster, overlay,
 * whoami on the netns runtime, Debian's nginx on Docker through the routing mesh), then EVERY
 * command it suggests is run exactly as printed (issue 12: "every command it suggests works as
 * printed"), then Ctrl-C tears everything down: no namespace and no container of the lab left.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { NETCTL, netctl } from '../../helpers/cli.js';
import { ensureDockerd, ensureImages } from '../../helpers/docker.js';

const LAB = 'itdm';
const labNamespaces = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`mlab-${LAB}-`));
const labContainers = () => spawnSync('docker', ['ps', '-aq', '--filter', `label=meshd.prefix`], { encoding: 'utf8' }).stdout
  .split('\n').filter(Boolean).filter((id) => spawnSync('docker', ['inspect', '-f', '{{index .Config.Labels "meshd.prefix"}}', id], { encoding: 'utf8' }).stdout.startsWith(`mlab-${LAB}-`));

after(async () => {
  await netctl(['lab', 'down', '--name', LAB]);
});

test('npm start: the full demo, then every suggested command works as printed, then Ctrl-C leaves nothing', async () => {
  if (!(await ensureDockerd())) throw new Error('this test needs Docker (Debian\'s docker.io): dockerd is not installed');
  await ensureImages();
  await netctl(['lab', 'down', '--name', LAB]);
  const demo = spawn(process.execPath, [NETCTL, 'demo', '--name', LAB], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  demo.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((r) => demo.once('exit', (code) => r(code)));
  const suggested: string[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: demo.stdout });
    let inTry = false;
    rl.on('line', (line) => {
      out += line + '\n';
      if (line.startsWith('Try, in another terminal')) inTry = true;
      else if (inTry && line.startsWith('  npx netctl ')) suggested.push(line);
      else if (line.startsWith('Press Ctrl-C')) resolve();
    });
    void exited.then((code) => reject(new Error(`demo exited ${code} before it was ready:\n${out.slice(-3000)}\n${err}`)));
  });
  const guard = setTimeout(() => demo.kill('SIGKILL'), 300_000);
  try {
    await ready;
    assert.doesNotMatch(out, /the lab stays up so you can look around/, `a walkthrough step failed:\n${out.slice(-3000)}`);
    assert.match(out, /answered by whoami\.\d/);
    assert.match(out, /\(10\.99\.1\.\d:8081\) {2}nginx v1 /);
    assert.ok(suggested.length >= 10, `suggestions: ${suggested.join('\n')}`);
    for (const line of suggested) {
      const args = line.replace(/#.*$/, '').trim().split(/\s+/).slice(2); // drop "npx netctl"
      const r = await netctl(args, { timeoutMs: 180_000 });
      assert.equal(r.code, 0, `as printed: ${line.trim()}\nexit ${r.code}: ${r.stderr}${r.stdout.slice(-500)}`);
      process.stdout.write(`# ok: netctl ${args.join(' ')}\n`);
    }
  } finally {
    clearTimeout(guard);
    demo.kill('SIGINT');
  }
  assert.equal(await exited, 0, `demo exit after Ctrl-C:\n${out.slice(-1500)}\n${err}`);
  assert.match(out, new RegExp(`removed lab ${LAB}`));
  assert.deepEqual(labNamespaces(), []);
  assert.deepEqual(labContainers(), []);
});
