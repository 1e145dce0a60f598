/** Local busybox image for the docker runtime tests (docker import; never pulled). */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realExec } from '../../../src/adapters/exec.js';

export const IMAGE = 'mtov-busybox:test';

/** busybox-static with every applet linked in /bin (so `docker exec c ip ...` works). */
export function buildImage(): void {
  if (spawnSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' }).status === 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'mtov-img-'));
  try {
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'tmp'));
    copyFileSync('/bin/busybox', join(dir, 'bin', 'busybox'));
    const applets = spawnSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).stdout.split('\n').filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
    for (const a of applets) symlinkSync('busybox', join(dir, 'bin', a));
    const tar = spawnSync('tar', ['-C', dir, '-c', '.'], { maxBuffer: 1 << 28 });
    if (tar.status !== 0) throw new Error('tar failed');
    const r = spawnSync('docker', ['import', '--change', 'ENV PATH=/bin', '-', IMAGE], { input: tar.stdout, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`docker import failed: ${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Removes every container labelled with this runtime prefix. */
export async function removeContainers(prefix: string): Promise<void> {
  const ids = (await realExec.run('docker', ['ps', '-aq', '--filter', `label=meshd.prefix=${prefix}`])).stdout.split('\n').filter(Boolean);
  if (ids.length) await realExec.run('docker', ['rm', '-f', ...ids]);
}

/** HTTP GET with busybox nc (busybox-static's wget crashes here); prints the body only. */
export function ncHttpGet(url: string): string[] {
  const m = /^http:\/\/([^/:]+)(?::(\d+))?(\/.*)?$/.exec(url);
  return ['sh', '-c', `printf 'GET ${m?.[3] ?? '/'} HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${m?.[1]} ${m?.[2] ?? 80} | sed '1,/^\\r$/d'`];
}
