/**
 * Real Docker for tests (ARCHITECTURE §3): Debian's docker.io, started by native-scripts/dockerd.sh
 * (the one place that holds dockerd's flags: vfs, no iptables, no bridge; log /var/log/meshd-dockerd.log)
 * when no engine answers. Images come from `docker import` — never a registry pull: busybox-static here,
 * real servers (nginx, redis) and the task sandbox from native-scripts/images.sh.
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, copyFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TEST_IMAGE = 'meshd-busybox:test';

/** Tags made by native-scripts/images.sh (see the comment block at its top for what each holds). */
export const IMAGES = {
  sandbox: 'meshd/sandbox:local',
  busybox: 'meshd/busybox:local',
  nginx1: 'meshd/nginx:1',
  nginx2: 'meshd/nginx:2',
  redis: 'meshd/redis:local',
} as const;

/** The repository root (this file runs from dist/test/helpers). */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const DOCKERD_SH = join(ROOT, 'native-scripts', 'dockerd.sh');
const IMAGES_SH = join(ROOT, 'native-scripts', 'images.sh');

function dockerOk(): boolean {
  return spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', timeout: 5000 }).status === 0;
}

/** Runs a script; resolves with its exit code and stderr (the scripts say on stderr what they waited on). */
function runScript(script: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', [script], { env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 1 << 24 }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stderr: err && err.killed ? `${stderr}\n(killed after ${timeoutMs} ms)` : stderr });
    });
  });
}

/** Starts dockerd (native-scripts/dockerd.sh) if none answers; waits until it does. False if docker is not installed. */
export async function ensureDockerd(timeoutMs = 60_000): Promise<boolean> {
  if (!existsSync('/usr/sbin/dockerd')) return false;
  if (dockerOk()) return true;
  const r = await runScript(DOCKERD_SH, { MESHD_DOCKERD_TIMEOUT: String(Math.ceil(timeoutMs / 1000)) }, timeoutMs + 10_000);
  if (r.code === 3) return false;
  if (r.code !== 0) throw new Error(`dockerd did not come up (native-scripts/dockerd.sh exit ${r.code}): ${r.stderr.trim()}`);
  return true;
}

/**
 * Makes the images of native-scripts/images.sh (idempotent: a fraction of a second when they exist and
 * their recipes did not change; a few seconds from the Debian download cache otherwise).
 */
export async function ensureImages(timeoutMs = 300_000): Promise<void> {
  const r = await runScript(IMAGES_SH, {}, timeoutMs);
  if (r.code !== 0) throw new Error(`native-scripts/images.sh failed (exit ${r.code}): ${r.stderr.trim()}`);
}

/** Builds TEST_IMAGE from /bin/busybox (busybox-static) with `docker import`. Idempotent. */
export function buildBusyboxImage(tag = TEST_IMAGE): string {
  if (spawnSync('docker', ['image', 'inspect', tag], { stdio: 'ignore' }).status === 0) return tag;
  const dir = mkdtempSync(join(tmpdir(), 'meshd-img-'));
  try {
    mkdirSync(join(dir, 'bin'));
    copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
    const tar = spawnSync('tar', ['-C', dir, '-c', '.'], { maxBuffer: 1 << 28 });
    if (tar.status !== 0) throw new Error('tar failed');
    const r = spawnSync('docker', ['import', '--change', 'ENTRYPOINT ["/bin/busybox"]', '-', tag], { input: tar.stdout, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker import failed: ${r.stderr}`);
    return tag;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
