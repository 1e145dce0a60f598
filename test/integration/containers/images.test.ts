/**
 * The local images of native-scripts/images.sh, proven on real Docker (Debian's docker.io) with
 * `--pull never` and `--network none`: each check runs inside the container with `docker exec`, so
 * nothing leaves the container's own namespace and no registry is ever asked.
 *   nginx :1/:2 answer `nginx vN <hostname>` on 127.0.0.1:80; redis answers PING; the sandbox exits 0
 *   within 1 s of `docker stop`; busybox has its applets on PATH. Image sizes are printed.
 * Every container carries the label meshd.test=mimg and is removed after each test, also on failure.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { IMAGES, ensureDockerd, ensureImages } from '../../helpers/docker.js';

const LABEL = 'meshd.test=mimg';
const NAME = `mimg-${process.pid}`;

interface Out { code: number; stdout: string; stderr: string }

function docker(args: string[], timeoutMs = 30_000): Promise<Out> {
  return new Promise((resolve) => {
    execFile('docker', args, { timeout: timeoutMs, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

async function mustDocker(args: string[]): Promise<string> {
  const r = await docker(args);
  if (r.code !== 0) throw new Error(`docker ${args.join(' ')} → exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** Starts a detached container of this test (labelled, no network, never pulled); returns its name. */
async function run(suffix: string, image: string, cmd: string[] = []): Promise<string> {
  const name = `${NAME}-${suffix}`;
  await mustDocker(['run', '-d', '--pull', 'never', '--network', 'none', '--label', LABEL, '--name', name, '--hostname', name, image, ...cmd]);
  return name;
}

/** Runs `docker exec` until it exits 0; the error names the command and its last output. */
async function execUntilOk(name: string, cmd: string[], timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last: Out = { code: -1, stdout: '', stderr: 'not run' };
  while (Date.now() < deadline) {
    last = await docker(['exec', name, ...cmd], 5000);
    if (last.code === 0) return last.stdout;
    await new Promise((r) => setTimeout(r, 100));
  }
  const logs = await docker(['logs', '--tail', '20', name]);
  throw new Error(`waited ${timeoutMs} ms for \`docker exec ${name} ${cmd.join(' ')}\` to succeed; last exit ${last.code}, ` +
    `stdout ${JSON.stringify(last.stdout)}, stderr ${JSON.stringify(last.stderr)}; container logs: ${logs.stdout}${logs.stderr}`);
}

/** Removes every container of this test (this run's and any a killed earlier run left). */
async function cleanup(): Promise<void> {
  const ids = (await mustDocker(['ps', '-aq', '--filter', `label=${LABEL}`])).split('\n').filter(Boolean);
  if (ids.length) await mustDocker(['rm', '-f', ...ids]);
}

/** HTTP GET of 127.0.0.1:80 inside the container, with busybox nc (prints the body). */
const NC_GET = ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 127.0.0.1 80 | sed '1,/^\\r$/d'`];

describe('images of native-scripts/images.sh', { timeout: 300_000 }, () => {
  before(async () => {
    if (!(await ensureDockerd())) throw new Error('docker.io is not installed (native-scripts/setup.sh installs it)');
    await cleanup();
    const t0 = Date.now();
    await ensureImages();
    console.log(`# images.sh took ${Date.now() - t0} ms`);
    for (const tag of Object.values(IMAGES)) {
      const size = Number(await mustDocker(['image', 'inspect', '-f', '{{.Size}}', tag]));
      console.log(`# ${tag}: ${(size / 1e6).toFixed(1)} MB`);
    }
  });
  after(cleanup);

  it('nginx :1 and :2 serve `nginx vN <hostname>` on 127.0.0.1:80, and differ only in N', async () => {
    try {
      const [n1, n2] = await Promise.all([run('n1', IMAGES.nginx1), run('n2', IMAGES.nginx2)]);
      assert.equal(await execUntilOk(n1, ['wget', '-qO-', 'http://127.0.0.1/']), `nginx v1 ${n1}\n`);
      assert.equal(await execUntilOk(n2, ['wget', '-qO-', 'http://127.0.0.1/any/path']), `nginx v2 ${n2}\n`);
      assert.equal(await execUntilOk(n1, NC_GET), `nginx v1 ${n1}\n`, 'busybox nc reaches it too');
      // PID 1 is nginx's master in the foreground; workers run as www-data.
      const ps = await execUntilOk(n1, ['ps', '-o', 'pid,user,args']);
      assert.match(ps, /^\s*1 root\s+nginx: master process nginx -g daemon off;/m, ps);
      assert.match(ps, /www-data\s+nginx: worker process/, ps);
      const t0 = Date.now();
      await mustDocker(['stop', '-t', '5', n1]);
      const stopMs = Date.now() - t0;
      const code = await mustDocker(['inspect', '-f', '{{.State.ExitCode}}', n1]);
      console.log(`# nginx stopped by SIGTERM in ${stopMs} ms, exit ${code}`);
      assert.ok(stopMs < 4000, `nginx took ${stopMs} ms to stop on SIGTERM (the stop timeout would have killed it)`);
    } finally {
      await cleanup();
    }
  });

  it('redis answers PING with PONG, on 0.0.0.0:6379 without protected mode or persistence', async () => {
    try {
      const r = await run('r1', IMAGES.redis);
      assert.equal(await execUntilOk(r, ['redis-cli', '-h', '127.0.0.1', '-p', '6379', 'PING']), 'PONG\n');
      const conf = await execUntilOk(r, ['redis-cli', 'CONFIG', 'GET', '*']);
      const kv = new Map<string, string>();
      const lines = conf.split('\n');
      for (let i = 0; i + 1 < lines.length; i += 2) kv.set(lines[i] ?? '', lines[i + 1] ?? '');
      assert.deepEqual([kv.get('bind'), kv.get('protected-mode'), kv.get('save'), kv.get('appendonly')], ['0.0.0.0', 'no', '', 'no']);
      assert.equal(await execUntilOk(r, ['sh', '-c', 'redis-cli SET k v >/dev/null && redis-cli GET k']), 'v\n');
    } finally {
      await cleanup();
    }
  });

  it('the sandbox sleeps until SIGTERM, then exits 0 at once', async () => {
    try {
      const size = Number(await mustDocker(['image', 'inspect', '-f', '{{.Size}}', IMAGES.sandbox]));
      assert.ok(size < 3e6, `the sandbox image should be busybox-static only, it is ${size} bytes`);
      const s = await run('s1', IMAGES.sandbox);
      const state = await mustDocker(['inspect', '-f', '{{.State.Status}}', s]);
      assert.equal(state, 'running');
      const t0 = Date.now();
      await mustDocker(['stop', '-t', '5', s]);
      const stopMs = Date.now() - t0;
      const code = await mustDocker(['inspect', '-f', '{{.State.ExitCode}}', s]);
      console.log(`# sandbox stopped in ${stopMs} ms, exit ${code}`);
      assert.equal(code, '0');
      assert.ok(stopMs < 1000, `sandbox took ${stopMs} ms to stop (its TERM trap did not fire?)`);
    } finally {
      await cleanup();
    }
  });

  it('busybox has its applets on PATH', async () => {
    try {
      const b = await run('b1', IMAGES.busybox, ['sleep', '600']);
      const out = await execUntilOk(b, ['sh', '-c', 'echo $PATH; which sh nc wget httpd nslookup']);
      assert.equal(out, ['/bin\n', ...['sh', 'nc', 'wget', 'httpd', 'nslookup'].map((a) => `/bin/${a}\n`)].join(''));
    } finally {
      await cleanup();
    }
  });
});
