/**
 * Glue for overlay integration tests: one "node" = host namespace + overlay reconciler +
 * netns runtime, all with the node's own name prefix (namespaces are machine-global).
 */
import { realExec } from '../../../src/adapters/exec.js';
import { NftVxlanGuard, type VxlanGuard } from '../../../src/adapters/firewall/vxlan-guard.js';
import { OverlayReconciler, IpOverlayKernel } from '../../../src/adapters/netlink/overlay.js';
import { NetnsRuntime } from '../../../src/adapters/runtime/netns.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import type { OverlayConfig, OverlayNetwork, RemoteEndpoint } from '../../../src/core/overlay/model.js';
import { sandboxName } from '../../../src/core/overlay/model.js';
import type { Attachment } from '../../../src/adapters/runtime/types.js';
import type { LabHost } from './lab.js';

export interface Node {
  host: LabHost;
  config: OverlayConfig;
  guard: VxlanGuard;
  /** A fresh reconciler each call: no in-memory state survives between reconciles. */
  overlay(guard?: VxlanGuard): OverlayReconciler;
  runtime: NetnsRuntime;
}

export function makeNode(labPrefix: string, host: LabHost): Node {
  const config: OverlayConfig = { prefix: `${labPrefix}${host.name}-`, hostNs: host.ns, underlayIp: host.ip, underlayMtu: 1500, vxlanPort: 4789 };
  const guard = new NftVxlanGuard(realExec, host.ns);
  return {
    host, config, guard,
    overlay: (g?: VxlanGuard) => new OverlayReconciler(config, new IpOverlayKernel(realExec, config.prefix, config.hostNs), g ?? guard),
    runtime: new NetnsRuntime({ prefix: config.prefix, exec: realExec, node: host.name }),
  };
}

export function endpoint(net: OverlayNetwork, ip: string, node: Node): RemoteEndpoint {
  return { network: net.id, ip, mac: macFromIp(ip), nodeIp: node.host.ip };
}

export function attachment(node: Node, net: OverlayNetwork, ip: string): Attachment {
  return {
    sandboxNs: sandboxName(node.config.prefix, net.id), bridge: 'br0', ip, prefix: Number(net.subnet.split('/')[1]),
    gateway: net.gateway, mac: macFromIp(ip), mtu: 1450,
  };
}

/** HTTP GET from inside a task (curl: busybox-static's wget crashes in namespaces here). */
export const httpGet = (url: string): string[] => ['curl', '-s', '-m', '2', url];
export const ping = (ip: string): string[] => ['ping', '-c', '1', '-W', '1', ip];
