/** `netctl network ...` (docker network create/ls/inspect/rm for the cluster's overlay and macvlan networks). */
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import { nodeClientFor, type GlobalOpts } from './context.js';
import { managerCall } from './cluster-commands.js';
import { formatted, printFormatted, table } from './format.js';
import { collect } from './node-commands.js';
import { networkCreateBody, type NetworkCreateFlags } from './network-flags.js';

interface NetworkView {
  id: string;
  name: string;
  driver: string;
  scope: string;
  subnet: string;
  gateway: string;
  vni: number;
  mtu?: number;
  attachable: boolean;
  ingress: boolean;
  internal: boolean;
}

/**
 * Adds what MTU an overlay network has on the node asked (`--node`, else this one): `mtu` = its
 * `--mtu`, else that node's automatic overlay MTU (issue 19: the smallest path to any peer minus
 * VXLAN's 50 bytes), and `mtuSource` = `configured` | `auto`. The automatic value is per node
 * (each probes its own paths), so it is read from the node, not from the manager's record.
 */
export async function withEffectiveMtu(globals: () => GlobalOpts, nets: NetworkView[]): Promise<Array<NetworkView & { mtuSource?: string }>> {
  if (!nets.some((n) => n.driver === 'overlay' && n.mtu === undefined)) {
    return nets.map((n) => (n.driver === 'overlay' ? { ...n, mtuSource: 'configured' } : n));
  }
  const st = await nodeClientFor(globals()).call<{ mtu?: { overlay: number } | null }>('GET', '/v1/overlay/status');
  return nets.map((n) => {
    if (n.driver !== 'overlay') return n;
    if (n.mtu !== undefined) return { ...n, mtuSource: 'configured' };
    return st.mtu ? { ...n, mtu: st.mtu.overlay, mtuSource: 'auto' } : { ...n, mtuSource: 'auto' };
  });
}

export function networkCommand(globals: () => GlobalOpts): Command {
  const call = managerCall(globals);
  const net = new Command('network').description('overlay networks of the cluster');
  net
    .command('create')
    .description('create a network; the manager\'s IPAM allocates subnet, VNI and every address centrally')
    .argument('<name>', 'network name (DNS label)')
    .option('-d, --driver <driver>', 'overlay (VXLAN across nodes) or macvlan (a sub-interface of each node\'s -o parent=IF)', 'overlay')
    .option('--subnet <cidr>', 'subnet, e.g. 10.10.0.0/24 (overlay default: next free /24 of 10.0.0.0/8; macvlan: required); repeat with an IPv6 one (fd00:1::/64) for --ipv6', collect)
    .option('--ipv6', 'dual stack: tasks also get an IPv6 address (from the IPv6 --subnet, /64../124; without one, the next free /64 of fd6d:6573:6864::/48) and AAAA/PTR names')
    .option('--gateway <ip>', 'gateway address in the subnet (default: first address)')
    .option('--ip-range <cidr>', 'allocate task addresses only from this range inside the subnet')
    .option('--aux-address <name=ip>', 'address IPAM never hands out (repeatable)', collect)
    .option('--mtu <bytes>', 'MTU (overlay default: underlay MTU - 50; macvlan default: the parent\'s)')
    .option('--attachable', 'allow standalone tasks to attach')
    .option('--internal', 'no published ports into it (a meshd overlay has no egress anyway)')
    .option('--label <k=v>', 'network label (repeatable)', collect)
    .option('-o, --opt <k=v>', 'driver option: macvlan parent=IF, macvlan_mode=bridge (repeatable)', collect)
    .option('--default-deny', 'a task on it accepts connections only from the services its own service lists in --allow-from (refused at once otherwise)')
    .action(async (name: string, o: NetworkCreateFlags) => {
      const n = await call<NetworkView>('POST', '/networks', networkCreateBody(name, o));
      process.stdout.write(`${n.id}\n`);
    });
  net
    .command('ls')
    .description('list networks')
    .option('-q, --quiet', 'only ids')
    .option('-f, --filter <k=v>', 'label=KEY[=VALUE], driver=, name=, id=, scope=, type=custom|builtin (repeatable)', collect)
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { quiet?: boolean; format?: string; filter?: string[] }) => {
      const q = (o.filter ?? []).map((f) => `filter=${encodeURIComponent(f)}`).join('&');
      const list = await call<NetworkView[]>('GET', `/networks${q ? `?${q}` : ''}`);
      if (formatted(list, o.format)) return;
      if (o.quiet) return void process.stdout.write(list.map((n) => `${n.id}\n`).join(''));
      process.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET', 'GATEWAY', 'VNI'],
        list.map((n) => [n.id.slice(0, 12), n.name, n.driver, n.scope, n.subnet, n.gateway, n.driver === 'macvlan' ? '-' : n.vni])));
    });
  net
    .command('inspect')
    .description('show networks as JSON')
    .argument('<network...>', 'names or ids')
    .option('-f, --format <tpl>', 'json (default), or a template per network, e.g. \'{{.subnet}}\'')
    .action(async (refs: string[], o: { format?: string }) => {
      const nets = await Promise.all(refs.map((r) => call('GET', `/networks/${encodeURIComponent(r)}`))) as NetworkView[];
      printFormatted(await withEffectiveMtu(globals, nets), o.format);
    });
  net
    .command('rm')
    .description('remove networks (refused while a service uses them)')
    .argument('<network...>', 'names or ids')
    .action(async (refs: string[]) => {
      for (const r of refs) {
        await call('DELETE', `/networks/${encodeURIComponent(r)}`);
        process.stdout.write(`${r}\n`);
      }
    });
  return net;
}
