/**
 * The one edge for running programs (ip, nft, ipvsadm, ...). Batch: callers send a whole
 * script on stdin (`ip -batch -`, `nft -f -`) rather than one process per rule.
 */
import { spawn } from 'node:child_process';
import { MeshError } from '../core/errors.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Text written to the child's stdin (batch scripts). */
  input?: string;
  /** Run inside this named network namespace (`ip netns exec NS ...`). */
  netns?: string;
  /** Kill the child after this many milliseconds (default 30 s). */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface Exec {
  /** Runs and resolves with the result whatever the exit code. */
  run(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Runs and throws MESHD_EXEC_FAILED (with stderr) on a non-zero exit. */
  check(cmd: string, args: readonly string[], opts?: ExecOptions): Promise<string>;
}

export function argvFor(cmd: string, args: readonly string[], netns?: string): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, cmd, ...args]] : [cmd, [...args]];
}

export const realExec: Exec = {
  run(cmd, args, opts = {}) {
    const [file, argv] = argvFor(cmd, args, opts.netns);
    return new Promise((resolve, reject) => {
      const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new MeshError('MESHD_EXEC_FAILED', `${file}: ${e.message}`, { cmd: file, args: argv }, { cause: e }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
      });
      child.stdin.on('error', () => undefined); // child may exit before reading all input
      child.stdin.end(opts.input ?? '');
    });
  },
  async check(cmd, args, opts) {
    const r = await realExec.run(cmd, args, opts);
    if (r.code !== 0) {
      const shown = [cmd, ...args].join(' ').slice(0, 200);
      throw new MeshError('MESHD_EXEC_FAILED', `${shown}: exit ${r.code}: ${r.stderr.trim().slice(0, 500)}`, {
        cmd,
        args: [...args],
        netns: opts?.netns,
        code: r.code,
        stderr: r.stderr.slice(0, 4000),
      });
    }
    return r.stdout;
  },
};
