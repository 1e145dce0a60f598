/**
 * The overlay reconciler compliance suite (test/helpers/overlay-reconciler-compliance.ts) against
 * the real kernel: iproute2 batches, `ip`/`bridge` JSON read-back and the nftables VXLAN guard,
 * all inside one host namespace this file creates (`mtovc-host`, a veth underlay link holding
 * the node's address) plus the sandboxes the reconciler makes (`mtovc-ov-*`). Nothing is sent on
 * any network; every `mtovc-*` namespace is deleted at the end, also when a test fails.
 */
import { realExec } from '../../../src/adapters/exec.js';
import { NftVxlanGuard } from '../../../src/adapters/firewall/vxlan-guard.js';
import { IpOverlayKernel } from '../../../src/adapters/netlink/overlay.js';
import type { OverlayConfig } from '../../../src/core/overlay/model.js';
import { overlayReconcilerCompliance } from '../../helpers/overlay-reconciler-compliance.js';
import { cleanupPrefix, listNetns } from './lab.js';

const PREFIX = 'mtovc-';

overlayReconcilerCompliance('iproute2 + nftables (real kernel)', PREFIX, async (prefix) => {
  await cleanupPrefix(prefix);
  const hostNs = `${prefix}host`;
  const config: OverlayConfig = { prefix, hostNs, underlayIp: '192.168.231.1', underlayMtu: 1500, vxlanPort: 4789 };
  const cleanup = async (): Promise<void> => {
    await cleanupPrefix(prefix);
    const left = (await listNetns()).filter((n) => n.startsWith(prefix));
    if (left.length) throw new Error(`namespaces left behind: ${left.join(' ')}`);
  };
  try {
    await realExec.check('ip', ['netns', 'add', hostNs]);
    await realExec.check('ip', ['-n', hostNs, '-batch', '-'], {
      input: `link set lo up\nlink add eth0 type veth peer name eth0p\nlink set eth0p up\naddr add ${config.underlayIp}/24 dev eth0\nlink set eth0 up\n`,
    });
  } catch (e) {
    await cleanup();
    throw e;
  }
  const ns = (n: string): string[] => ['-n', n];
  return {
    config,
    kernel: new IpOverlayKernel(realExec, prefix, hostNs),
    guard: new NftVxlanGuard(realExec, hostNs),
    tamper: {
      dropFdb: async (sb, dev, mac, dst) => void (await realExec.check('bridge', [...ns(sb), 'fdb', 'del', mac, 'dev', dev, 'dst', dst, 'self'])),
      dropNeigh: async (sb, dev, ip) => void (await realExec.check('ip', [...ns(sb), 'neigh', 'del', ip, 'dev', dev])),
      dropLink: async (sb, dev) => void (await realExec.check('ip', [...ns(sb), 'link', 'del', dev])),
      addStrayHostLink: async (vni) => void (await realExec.check('ip', [...ns(hostNs), 'link', 'add', `vx-${vni}`, 'type', 'vxlan', 'id', String(vni),
        'dstport', '4789', 'local', config.underlayIp, 'nolearning'])),
    },
    namespaces: async () => (await listNetns()).filter((n) => n.startsWith(`${prefix}ov-`)).sort(),
    cleanup,
  };
});
