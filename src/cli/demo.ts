/**
 * `netctl demo` — what `npm start` runs: a 3-node lab, kept up until Ctrl-C, then torn
 * down. It grows into the full demo (service published through the routing mesh) as the
 * overlay, load balancer and DNS land.
 */
import { Command } from 'commander';
import { realExec } from '../adapters/exec.js';
import { labDown, labUp, readState } from '../lab/lab.js';
import { parseNodeCount, validateLabName } from '../lab/plan.js';
import { table } from './format.js';

export function demoCommand(): Command {
  return new Command('demo')
    .description('bring up the demo lab and keep it running until Ctrl-C (what `npm start` runs)')
    .option('--name <lab>', 'lab name', 'demo')
    .option('--nodes <n>', 'number of nodes', '3')
    .option('--exit-after <seconds>', 'tear down after this many seconds instead of waiting for Ctrl-C')
    .action(async (o: { name: string; nodes: string; exitAfter?: string }) => {
      const name = validateLabName(o.name);
      const nodes = parseNodeCount(o.nodes);
      if (readState(name)) {
        process.stderr.write(`removing leftovers of a previous lab ${name}\n`);
      }
      await labDown(realExec, name); // idempotent: also clears a crashed previous run
      const say = (m: string) => process.stdout.write(`${m}\n`);
      const s = await labUp(realExec, { name, nodes, onProgress: (m) => say(`• ${m}`) });
      say('');
      say(table(['NODE', 'NAMESPACE', 'UNDERLAY', 'SOCKET'], s.nodes.map((n) => [n.name, n.netns, n.underlay, n.socket])));
      say('Try, in another terminal:');
      say(`  npx netctl lab ls`);
      say(`  npx netctl --lab ${name} --node n2 info`);
      say(`  npx netctl lab client --name ${name} -- ping -c1 ${s.nodes[0]!.underlay}`);
      say(`  npx netctl lab exec n1 --name ${name} -- ip -br addr`);
      say('');
      say('Press Ctrl-C to tear the lab down.');
      await new Promise<void>((resolve) => {
        // an interval keeps the event loop alive while we wait for a signal
        const keepAlive = setInterval(() => undefined, 60_000);
        const done = () => {
          clearInterval(keepAlive);
          resolve();
        };
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
        if (o.exitAfter) setTimeout(done, Number(o.exitAfter) * 1000);
      });
      say('\ntearing down…');
      const r = await labDown(realExec, name);
      say(`removed lab ${name}: ${r.namespaces} namespaces, ${r.processes} processes`);
    });
}
