/** `netctl network ...` (docker network create/ls/inspect/rm for overlay networks of the cluster). */
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import type { GlobalOpts } from './context.js';
import { managerCall } from './cluster-commands.js';
import { formatted, printFormatted, table } from './format.js';

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
}

export function networkCommand(globals: () => GlobalOpts): Command {
  const call = managerCall(globals);
  const net = new Command('network').description('overlay networks of the cluster');
  net
    .command('create')
    .description('create an overlay network; IPAM allocates subnet and VNI centrally')
    .argument('<name>', 'network name (DNS label)')
    .option('-d, --driver <driver>', 'driver (only overlay)', 'overlay')
    .option('--subnet <cidr>', 'subnet, e.g. 10.10.0.0/24 (default: next free /24 of 10.0.0.0/8)')
    .option('--gateway <ip>', 'gateway address in the subnet (default: first address)')
    .option('--mtu <bytes>', 'overlay MTU (default: underlay MTU - 50)')
    .option('--attachable', 'allow standalone tasks to attach')
    .action(async (name: string, o: { driver: string; subnet?: string; gateway?: string; mtu?: string; attachable?: boolean }) => {
      if (o.driver !== 'overlay') throw new MeshError('MESHD_BAD_ARGUMENT', `unsupported driver ${JSON.stringify(o.driver)}: only overlay`);
      const mtu = o.mtu === undefined ? undefined : Number(o.mtu);
      if (mtu !== undefined && !Number.isInteger(mtu)) throw new MeshError('MESHD_BAD_ARGUMENT', `--mtu must be an integer, got ${JSON.stringify(o.mtu)}`);
      const n = await call<NetworkView>('POST', '/networks', {
        name, driver: 'overlay', attachable: o.attachable === true,
        ...(o.subnet !== undefined ? { subnet: o.subnet } : {}), ...(o.gateway !== undefined ? { gateway: o.gateway } : {}), ...(mtu !== undefined ? { mtu } : {}),
      });
      process.stdout.write(`${n.id}\n`);
    });
  net
    .command('ls')
    .description('list networks')
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { quiet?: boolean; format?: string }) => {
      const list = await call<NetworkView[]>('GET', '/networks');
      if (formatted(list, o.format)) return;
      if (o.quiet) return void process.stdout.write(list.map((n) => `${n.id}\n`).join(''));
      process.stdout.write(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE', 'SUBNET', 'GATEWAY', 'VNI'],
        list.map((n) => [n.id.slice(0, 12), n.name, n.driver, n.scope, n.subnet, n.gateway, n.vni])));
    });
  net
    .command('inspect')
    .description('show networks as JSON')
    .argument('<network...>', 'names or ids')
    .option('-f, --format <tpl>', 'json (default), or a template per network, e.g. \'{{.subnet}}\'')
    .action(async (refs: string[], o: { format?: string }) => {
      printFormatted(await Promise.all(refs.map((r) => call('GET', `/networks/${encodeURIComponent(r)}`))), o.format);
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
