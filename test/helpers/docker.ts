/**
 * Real Docker for tests (ARCHITECTURE §3): Debian's docker.io, started here with
 * `dockerd --storage-driver=vfs` when no engine answers; images come from `docker import`
 * of busybox-static — never a registry pull.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const TEST_IMAGE = 'meshd-busybox:test';

function dockerOk(): boolean {
  return spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8', timeout: 5000 }).status === 0;
}

/** Starts dockerd if none answers; waits until it does. Returns false if docker is not installed. */
export async function ensureDockerd(timeoutMs = 60_000): Promise<boolean> {
  if (!existsSync('/usr/sbin/dockerd')) return false;
  if (dockerOk()) return true;
  const log = '/var/log/meshd-test-dockerd.log';
  // --iptables=false / --ip-masq=false: the test engine must not touch the root namespace's firewall;
  // --bridge=none: containers start with network none anyway, meshd plumbs them.
  const child = spawn('dockerd', ['--storage-driver=vfs', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--bridge=none'], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  child.unref();
  writeFileSync(log, `started dockerd pid ${child.pid}\n`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (dockerOk()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('dockerd did not come up');
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
