/**
 * The overlay reconciler compliance suite against the in-memory fake kernel and guard (what the
 * agent's unit tests and --dry-run stand on); the same suite runs on the real kernel in
 * test/integration/overlay/reconciler-compliance.test.ts.
 */
import { FakeOverlayKernel } from '../../../src/adapters/netlink/fake.js';
import type { OverlayConfig } from '../../../src/core/overlay/model.js';
import { FakeVxlanGuard } from '../../helpers/fake-vxlan-guard.js';
import { overlayReconcilerCompliance } from '../../helpers/overlay-reconciler-compliance.js';

overlayReconcilerCompliance('fake', 'fake-', async (prefix) => {
  const config: OverlayConfig = { prefix, hostNs: null, underlayIp: '192.168.231.1', underlayMtu: 1500, vxlanPort: 4789 };
  const kernel = new FakeOverlayKernel();
  const sandbox = (ns: string) => {
    const s = kernel.state.sandboxes.find((x) => x.ns === ns);
    if (!s) throw new Error(`fake: no sandbox ${ns}`);
    return s;
  };
  return {
    config,
    kernel,
    guard: new FakeVxlanGuard(),
    tamper: {
      dropFdb: async (ns, _dev, mac) => void (sandbox(ns).fdb = sandbox(ns).fdb.filter((f) => f.mac !== mac)),
      dropNeigh: async (ns, _dev, ip) => void (sandbox(ns).neigh = sandbox(ns).neigh.filter((n) => n.ip !== ip)),
      dropLink: async (ns, dev) => {
        const s = sandbox(ns);
        if (s.vxlan?.name === dev) Object.assign(s, { vxlan: null, fdb: [], neigh: [] });
        else if (s.bridge?.name === dev) s.bridge = null;
      },
      addStrayHostLink: async (vni) => void kernel.state.strayHostLinks.push(`vx-${vni}`),
    },
    namespaces: async () => kernel.state.sandboxes.map((s) => s.ns).sort(),
    cleanup: async () => undefined,
  };
});
