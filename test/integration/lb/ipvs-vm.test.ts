/**
 * The dataplane compliance suite on REAL IPVS: boots Debian's stock kernel under qemu (this machine's
 * kernel has no ip_vs) and runs dist/test/vm/lb-ipvs.test.js inside, via native-scripts/vm/run.sh.
 *
 * Never skips: if qemu cannot be installed or the kernel package cannot be downloaded, prepare.sh fails
 * and so does this test, with prepare's message. The VM has no network device; everything it does
 * happens in its own kernel, in namespaces it creates.
 *
 * Budget: prepare ~1 min on a fresh machine (download 70 MB + extract), then boot ~5-20 s and the suite
 * ~2-4 min under TCG (no usable KVM here). Hard limits: prepare 10 min, VM 8 min.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const VM_TIMEOUT_S = 480;

interface Run {
  code: number | null;
  out: string;
  err: string;
  ms: number;
  readyMs?: number;
}

/** Runs a script, streaming its stdout lines to ours prefixed (so CI logs show the VM's progress). */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, limitMs: number, prefix: string): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let readyMs: number | undefined;
    let partial = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      partial += d;
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        if (readyMs === undefined && line.startsWith('MESHD-VM-READY')) readyMs = performance.now() - t0;
        process.stdout.write(`${prefix}${line}\n`);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, ms: performance.now() - t0, ...(readyMs !== undefined ? { readyMs } : {}) });
    });
  });
}

/** The node:test summary lines ("✖ name", "ℹ pass 7") of the run inside the VM. */
function summary(out: string): string {
  return out
    .split('\n')
    .filter((l) => /^\s*(✔|✖|ℹ (tests|pass|fail|duration_ms))/.test(l))
    .join('\n');
}

test('IPVS backend passes the dataplane compliance suite inside a VM with ip_vs', { timeout: (VM_TIMEOUT_S + 660) * 1000 }, async () => {
  const prep = await run('native-scripts/vm/prepare.sh', [], {}, 600_000, '[vm-prepare] ');
  assert.equal(prep.code, 0, `VM prepare failed (qemu-system-x86 / linux-image-*-amd64 from the Debian archive):\n${prep.err.slice(-3000)}`);

  const vm = await run('native-scripts/vm/run.sh', ['node', '--test', '--test-reporter=spec', 'dist/test/vm/lb-ipvs.test.js'], { MESHD_VM_TIMEOUT: String(VM_TIMEOUT_S) }, (VM_TIMEOUT_S + 30) * 1000, '[vm] ');
  const guestReady = /MESHD-VM-READY uptime=([0-9.]+)/.exec(vm.out)?.[1];
  const guestDone = /MESHD-VM-DONE uptime=([0-9.]+)/.exec(vm.out)?.[1];
  const suiteS = guestReady && guestDone ? (Number(guestDone) - Number(guestReady)).toFixed(1) : '?';
  console.log(
    `ipvs-vm: boot-to-ready ${vm.readyMs !== undefined ? (vm.readyMs / 1000).toFixed(1) : '?'} s (host clock; guest uptime ${guestReady ?? '?'} s), ` +
      `suite ${suiteS} s (guest clock), total ${(vm.ms / 1000).toFixed(1)} s; ${vm.err.trim().split('\n').slice(-1)[0] ?? ''}`,
  );
  assert.equal(vm.code, 0, `IPVS compliance inside the VM exited ${vm.code} (124 = VM timeout, 125 = harness failure):\n${summary(vm.out)}\n${vm.err.slice(-2000)}`);
});
