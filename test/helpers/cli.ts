/** Drive the real binaries from tests. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const NETCTL = join(ROOT, 'dist', 'src', 'bin', 'netctl.js');
export const MESHD = join(ROOT, 'dist', 'src', 'bin', 'meshd.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Asserts that a command exited 0 and returns its result. The message names the step (`what`), the
 * exit code and stderr, then stdout when there is any (a netctl error can print its detail there).
 */
export function ok(r: CliResult, what: string): CliResult {
  const out = r.stdout.trim();
  assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stderr.trim()}${out ? `\nstdout: ${out}` : ''}`);
  return r;
}

export function netctlSync(args: string[], opts: { input?: string; timeoutMs?: number } = {}): CliResult {
  const r = spawnSync(process.execPath, [NETCTL, ...args], { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 120_000 });
  return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Async variant: does not block the test process's event loop (servers in the test keep answering). */
export function netctl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [NETCTL, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 128, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a command inside a namespace and captures its output. */
export function inNs(netns: string, argv: string[], timeoutMs = 30_000): CliResult {
  const r = spawnSync('ip', ['netns', 'exec', netns, ...argv], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
