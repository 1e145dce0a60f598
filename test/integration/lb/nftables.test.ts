/**
 * The shared dataplane compliance suite against the nftables backend, in mtlb-* namespaces.
 * (The IPVS backend runs the same suite inside the VM harness; here it is covered by golden and
 * recording-exec tests, since this kernel has no ip_vs.)
 */
import { NftablesDataplane } from '../../../src/adapters/dataplane/nftables.js';
import { realExec } from '../../../src/adapters/exec.js';
import { runDataplaneCompliance } from './compliance.js';

runDataplaneCompliance({
  name: 'nftables',
  prefix: 'mtlb-nc',
  make: () => new NftablesDataplane(),
  // someone deletes our table behind our back: the next incremental `flush chain` must fail
  tamper: async (netns) => {
    await realExec.check('nft', ['delete', 'table', 'ip', 'meshd-lb'], { netns });
  },
});
