/**
 * Stand-in for the docker runtime's sandbox image (the real one is made by native-scripts):
 * busybox-static `docker import`ed, whose command sleeps until SIGTERM and then exits 0 — what a
 * pause container does. Never pulled. Built only when the tag is absent, so a real image made
 * by the setup script is left alone.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SANDBOX_IMAGE = 'meshd/sandbox:local';

export function buildSandboxImage(tag = SANDBOX_IMAGE): string {
  if (spawnSync('docker', ['image', 'inspect', tag], { stdio: 'ignore' }).status === 0) return tag;
  const dir = mkdtempSync(join(tmpdir(), 'meshd-sbimg-'));
  try {
    mkdirSync(join(dir, 'bin'));
    copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
    const tar = spawnSync('tar', ['-C', dir, '-c', '.'], { maxBuffer: 1 << 28 });
    if (tar.status !== 0) throw new Error('tar failed');
    const cmd = JSON.stringify(['/bin/busybox', 'sh', '-c', "trap 'exit 0' TERM INT; while :; do /bin/busybox sleep 3600 & wait $!; done"]);
    const r = spawnSync('docker', ['import', '--change', `CMD ${cmd}`, '-', tag], { input: tar.stdout, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker import failed: ${r.stderr}`);
    return tag;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
