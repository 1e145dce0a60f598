/** `netctl lab ...`: a cluster of namespace hosts on this machine (see src/lab). */
import { Command } from 'commander';
import { realExec } from '../adapters/exec.js';
import { labDownSummary } from '../lab/engine-requests.js';
import { labDown, labDownAll, labList, labNodeNs, labRun, labSignalAgent, labStartAgent, labUp, requireState } from '../lab/lab.js';
import { checkLabUnderlay, parseNodeCount, validateLabName } from '../lab/plan.js';
import { labBlock, labHeal, labPartition } from '../lab/faults.js';
import { labInitCluster } from '../lab/cluster.js';
import { MeshError } from '../core/errors.js';
import { DEFAULT_LAB } from './context.js';
import { formatted, parseFormat, printJson, table } from './format.js';

const SIGNALS = new Set(['SIGKILL', 'SIGTERM', 'SIGSTOP', 'SIGCONT', 'SIGINT']);

export function labCommand(setExit: (code: number) => void): Command {
  const lab = new Command('lab').description('a multi-node cluster of network namespaces on this machine');

  lab
    .command('up')
    .description('create N host namespaces on an underlay switch and start one meshd in each')
    .requiredOption('--nodes <n>', 'number of nodes (1-250)')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .option('--preset <preset>', 'gossip preset for the agents: local|lan|wan', 'local')
    .option('--cluster', 'also make it a cluster: cluster init on n1, the others join as workers')
    .option('--format <fmt>', 'table|json')
    .option('--meshd <path>', 'the meshd to run, e.g. an installed one (default: $MESHD_BIN, else this checkout\'s dist/src/bin/meshd.js)')
    .option('--underlay <families>', 'underlay address families: ipv4|ipv6 (IPv6-only: gossip and VXLAN over IPv6)|dual', 'ipv4')
    .action(async (o: { nodes: string; name: string; preset: string; cluster?: boolean; format?: string; meshd?: string; underlay: string }) => {
      const nodes = parseNodeCount(o.nodes);
      const fmt = parseFormat(o.format);
      if (!['local', 'lan', 'wan'].includes(o.preset)) throw new MeshError('MESHD_BAD_ARGUMENT', `unknown --preset ${o.preset}: use local, lan or wan`);
      const s = await labUp(realExec, {
        name: validateLabName(o.name),
        nodes,
        gossipPreset: o.preset as 'local',
        ...(o.meshd ? { meshd: o.meshd } : {}),
        underlay: checkLabUnderlay(o.underlay),
        onProgress: fmt === 'table' ? (m) => process.stderr.write(`${m}\n`) : undefined,
      });
      if (o.cluster) await labInitCluster(s, fmt === 'table' ? (m) => process.stderr.write(`${m}\n`) : undefined);
      const out = { name: s.name, client: s.client, nodes: s.nodes.map((n) => ({ name: n.name, namespace: n.netns, underlay: n.underlay, socket: n.socket, pid: n.pid })) };
      if (fmt === 'json') printJson(out);
      else process.stdout.write(table(['NODE', 'NAMESPACE', 'UNDERLAY', 'SOCKET'], out.nodes.map((n) => [n.name, n.namespace, n.underlay, n.socket])));
    });

  lab
    .command('down')
    .description('remove a lab: processes, containers, namespaces, links, nft tables, sockets')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .option('--all', 'remove every lab on this machine, also leftovers of crashed runs')
    .action(async (o: { name: string; all?: boolean }) => {
      if (o.all) {
        const labs = await labDownAll(realExec);
        process.stdout.write(labs.length ? `removed: ${labs.join(', ')}\n` : 'no labs\n');
        return;
      }
      const r = await labDown(realExec, validateLabName(o.name));
      if (r.namespaces === 0 && r.containers === 0 && r.processes === 0) throw new MeshError('MESHD_LAB_NOT_FOUND', `no lab named ${o.name}`);
      process.stdout.write(`${labDownSummary(o.name, r)}\n`);
    });

  lab
    .command('ls')
    .description('list labs and their agents')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const labs = await labList(realExec);
      if (formatted(labs, o.format)) return;
      const rows = labs.flatMap((l) =>
        l.nodes.length
          ? l.nodes.map((n) => [l.name, n.name, n.underlay, n.running ? 'running' : 'stopped', n.pid, n.socket])
          : [[l.name, '-', '-', l.stale ? 'stale (run: netctl lab down --all)' : '-', null, null]],
      );
      process.stdout.write(table(['LAB', 'NODE', 'UNDERLAY', 'AGENT', 'PID', 'SOCKET'], rows));
    });

  lab
    .command('exec')
    .description('run a command in a node\'s host namespace')
    .argument('<node>', 'node name (n1, n2, ...)')
    .argument('<cmd...>', 'command and arguments, after --')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .action((node: string, cmd: string[], o: { name: string }) => {
      setExit(labRun(labNodeNs(validateLabName(o.name), node), cmd));
    });

  lab
    .command('client')
    .description('run a command in the lab\'s client namespace (a laptop on the underlay, outside the cluster)')
    .argument('<cmd...>', 'command and arguments, after --')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .action((cmd: string[], o: { name: string }) => {
      setExit(labRun(requireState(validateLabName(o.name)).client.netns, cmd));
    });

  lab
    .command('start')
    .description('start (or restart after a kill) one node\'s agent')
    .argument('<node>')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .action(async (node: string, o: { name: string }) => {
      const n = await labStartAgent(validateLabName(o.name), node);
      process.stdout.write(`${n.name} started (pid ${n.pid})\n`);
    });

  lab
    .command('kill')
    .description('send a signal to one node\'s agent (fault injection)')
    .argument('<node>')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .option('-s, --signal <sig>', 'SIGKILL|SIGTERM|SIGSTOP|SIGCONT', 'SIGKILL')
    .action((node: string, o: { name: string; signal: string }) => {
      const sig = o.signal.startsWith('SIG') ? o.signal : `SIG${o.signal}`;
      if (!SIGNALS.has(sig)) throw new MeshError('MESHD_BAD_ARGUMENT', `unsupported signal ${o.signal}`);
      const pid = labSignalAgent(validateLabName(o.name), node, sig as NodeJS.Signals);
      process.stdout.write(`sent ${sig} to ${node} (pid ${pid})\n`);
    });

  const fault = lab.command('fault').description('inject network faults with nftables inside the lab (no netem needed)');
  const proto = (p?: string): 'udp' | 'tcp' | undefined => {
    if (p === undefined) return undefined;
    if (p !== 'udp' && p !== 'tcp') throw new MeshError('MESHD_BAD_ARGUMENT', `--proto must be udp or tcp, got ${p}`);
    return p;
  };
  const nodeList = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean);
  fault
    .command('partition')
    .description('cut the lab into groups; nothing crosses between groups')
    .argument('<groups...>', 'comma-separated node lists, e.g. n1,n2 n3,n4,n5')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .option('--proto <p>', 'only udp or tcp')
    .action(async (groups: string[], o: { name: string; proto?: string }) => {
      if (groups.length < 2) throw new MeshError('MESHD_BAD_ARGUMENT', 'give at least two groups');
      await labPartition(realExec, validateLabName(o.name), groups.map(nodeList), proto(o.proto));
      process.stdout.write(`partitioned: ${groups.join(' | ')}\n`);
    });
  fault
    .command('block')
    .description('drop traffic of one node: all, udp-only, inbound-only (one-way) or a random share')
    .argument('<node>')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .option('--proto <p>', 'only udp or tcp')
    .option('--one-way', 'drop only what the node receives')
    .option('--loss <percent>', 'drop this percentage (numgen random)')
    .option('--from <nodes>', 'only traffic with these nodes (comma-separated)')
    .action(async (node: string, o: { name: string; proto?: string; oneWay?: boolean; loss?: string; from?: string }) => {
      const loss = o.loss === undefined ? undefined : Number(o.loss);
      if (loss !== undefined && !Number.isFinite(loss)) throw new MeshError('MESHD_BAD_ARGUMENT', `--loss must be a number, got ${o.loss}`);
      await labBlock(realExec, validateLabName(o.name), node, { proto: proto(o.proto), oneWay: !!o.oneWay, lossPercent: loss, from: o.from ? nodeList(o.from) : undefined });
      process.stdout.write(`blocked ${node}\n`);
    });
  fault
    .command('heal')
    .description('remove every injected fault')
    .option('--name <lab>', 'lab name', DEFAULT_LAB)
    .action(async (o: { name: string }) => {
      await labHeal(realExec, validateLabName(o.name));
      process.stdout.write('healed\n');
    });

  return lab;
}
