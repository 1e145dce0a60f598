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
import { test } from 'node:test';
import { run, snapshotDist, summary, timings } from '../../vm/harness.js';

const VM_TIMEOUT_S = 480;

test('IPVS backend passes the dataplane compliance suite inside a VM with ip_vs', { timeout: (VM_TIMEOUT_S + 660) * 1000 }, async () => {
  const prep = await run('native-scripts/vm/prepare.sh', [], {}, 600_000, '[vm-prepare] ');
  assert.equal(prep.code, 0, `VM prepare failed (qemu-system-x86 / linux-image-*-amd64 from the Debian archive):\n${prep.err.slice(-3000)}`);

  // A private copy of dist/: other builds may rewrite dist/ while the guest reads it over 9p.
  const snap = await snapshotDist();
  try {
    const vm = await run('native-scripts/vm/run.sh', ['node', '--test', '--test-reporter=spec', snap.rel('dist/test/vm/lb-ipvs.test.js')], { MESHD_VM_TIMEOUT: String(VM_TIMEOUT_S) }, (VM_TIMEOUT_S + 30) * 1000, '[vm] ');
    console.log(`ipvs-vm: ${timings(vm)}`);
    assert.equal(vm.code, 0, `IPVS compliance inside the VM exited ${vm.code} (124 = VM timeout, 125 = harness failure):\n${summary(vm.out)}\n${vm.err.slice(-2000)}`);
  } finally {
    snap.remove();
  }
});
