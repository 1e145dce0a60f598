/**
 * The routing mesh and VIP balancing on REAL IPVS: boots Debian's stock kernel under qemu (this
 * machine's kernel has no ip_vs) and runs dist/test/vm/lb-ipvs-mesh.test.js inside — a 3-node lab whose
 * agents run the IPVS dataplane (see that file for the cases: every node's :8080 and the VIP reach all
 * 3 tasks, over IPv6 too (dual underlay: each node's IPv6 :8080 reaches all 3 through the `-6` fwmark
 * service), policy local keeps the client address, scale 3 → 1 with confirmed drains, scale to 0
 * refuses at once; kernel state asserted with `ipvsadm -Ln`). The nftables twin is
 * test/integration/lb-agent/lb-agent.test.ts.
 *
 * Never skips: if qemu or the kernel package are missing, prepare.sh fails and so does this test. The
 * VM has no network device; the lab lives in its own kernel.
 *
 * Cost cuts for TCG (each is said where it is made): the guest runs a private snapshot of dist/ whose
 * node_modules stubs the manager's etcd/PKI packages lab agents never call (harness.ts
 * LAB_AGENT_STUBS); every node process preloads v8-flags.js (no JIT tiers); the test file runs in the
 * test runner's own process (`node --test-reporter=spec FILE`, not `node --test FILE`, which spawns a
 * second node process to run it).
 *
 * Budget: boot 5-20 s and the lab ~4-10 min under TCG (no usable KVM here) on a 2-core host; it is
 * the most expensive file of `npm test`. Measured (2026-12-06): 251 s on a quiet host (load ~3), 582 s
 * with the host at load 24 (other labs running); above that the guest starves (agents need 70-80 s to
 * start, DNS socket binders time out and retry) and a run can hit the 12 min VM limit. The VM gets
 * 2 GiB (3 agents, 5 tasks: all node processes). Hard limits: prepare 10 min, VM 12 min.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { join } from 'node:path';
import { LAB_AGENT_STUBS, run, snapshotDist, summary, timings } from '../../vm/harness.js';

const VM_TIMEOUT_S = Number(process.env.MESHD_VM_TIMEOUT ?? 720);
/** Limits inside the guest that a manual run on a very busy host may raise (see lb-ipvs-mesh.test.ts). */
const PASS = ['MESHD_VM_LAB_READY_MS', 'MESHD_VM_LAB_TIMEOUT_MS', 'MESHD_VM_LAB_SLOW'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]}`);
test('routing mesh and VIPs on the IPVS dataplane: 3-node lab inside a VM with ip_vs', { timeout: (VM_TIMEOUT_S + 660) * 1000 }, async () => {
  const prep = await run('native-scripts/vm/prepare.sh', [], {}, 600_000, '[vm-prepare] ');
  assert.equal(prep.code, 0, `VM prepare failed (qemu-system-x86 / linux-image-*-amd64 from the Debian archive):\n${prep.err.slice(-3000)}`);

  const snap = await snapshotDist(3000, 180_000, LAB_AGENT_STUBS);
  try {
    // Every node process in the guest (test runner, agents, their helpers inherit NODE_OPTIONS) preloads
    // test/vm/v8-flags.ts: no JIT tiers above the interpreter, which under TCG cost more than they save.
    const nodeOptions = `--import=${join(snap.dir, 'dist/test/vm/v8-flags.js')}`;
    const vm = await run('native-scripts/vm/run.sh', ['env', `NODE_OPTIONS=${nodeOptions}`, ...PASS, 'node', '--test-reporter=spec', snap.rel('dist/test/vm/lb-ipvs-mesh.test.js')],
      { MESHD_VM_TIMEOUT: String(VM_TIMEOUT_S), MESHD_VM_MEM: process.env.MESHD_VM_MEM ?? '2048' }, (VM_TIMEOUT_S + 30) * 1000, '[vm] ');
    console.log(`ipvs-vm-mesh: ${timings(vm)}`);
    assert.equal(vm.code, 0, `the IPVS mesh test inside the VM exited ${vm.code} (124 = VM timeout, 125 = harness failure):\n${summary(vm.out)}\n${vm.err.slice(-2000)}`);
  } finally {
    snap.remove();
  }
});
