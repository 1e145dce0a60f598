/**
 * The shared dataplane compliance suite against the IPVS backend. Runs ONLY inside the VM harness
 * (native-scripts/vm/run.sh boots Debian's stock kernel, which has ip_vs): this machine's kernel has
 * none, so the normal test runner never scans test/vm/. Driven by test/integration/lb/ipvs-vm.test.ts:
 *
 *   native-scripts/vm/run.sh node --test dist/test/vm/lb-ipvs.test.js
 *
 * Namespaces are mtlb-iv-* (inside the VM's own kernel; nothing here touches the host's network).
 */
import { existsSync } from 'node:fs';
import { IpvsDataplane } from '../../src/adapters/dataplane/ipvs.js';
import { realExec } from '../../src/adapters/exec.js';
import { runDataplaneCompliance } from '../integration/lb/compliance.js';

// Fail loudly (not skip) when run without ip_vs: this file exists to prove the IPVS backend on real IPVS.
if (!existsSync('/proc/net/ip_vs')) {
  throw new Error('lb-ipvs.test: /proc/net/ip_vs is missing — run this inside the VM (native-scripts/vm/run.sh), not on a kernel without ip_vs');
}

runDataplaneCompliance({
  name: 'ipvs',
  prefix: 'mtlb-iv',
  make: () => new IpvsDataplane(),
  // someone clears the IPVS table behind our back: the next incremental ipvsadm-restore (which
  // edits real servers of services that are now gone) must fail
  tamper: async (netns) => {
    await realExec.check('ipvsadm', ['-C'], { netns });
  },
});
