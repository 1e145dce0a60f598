/**
 * `netctl demo` — what `npm start` runs: the full walkthrough on a 3-node lab, done with the
 * same netctl commands a person would type (each one is printed before its output):
 * cluster init/join, an overlay network, `whoami` with 3 replicas published on 8080 through
 * the routing mesh, requests from the lab's client to every node, a name resolved inside a
 * task at 127.0.0.11. Then it keeps the lab up until Ctrl-C and tears it down.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { MeshError } from '../core/errors.js';
import { realExec } from '../adapters/exec.js';
import { labDownSummary } from '../lab/engine-requests.js';
import { labDown, labUp, readState, type LabState } from '../lab/lab.js';
import { labRunDir, parseNodeCount, validateLabName } from '../lab/plan.js';

const NETCTL = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'netctl.js');
const say = (m: string) => process.stdout.write(`${m}\n`);

/** Runs netctl as a user would, echoing the command line and its output. */
function netctl(args: string[], opts: { quiet?: boolean; allowFail?: boolean } = {}): string {
  say(`\n$ netctl ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [NETCTL, ...args], { encoding: 'utf8', timeout: 180_000 });
  if (!opts.quiet && r.stdout) process.stdout.write(r.stdout);
  if (r.stderr) process.stdout.write(r.stderr);
  if (r.status !== 0 && !opts.allowFail) throw new MeshError('MESHD_EXEC_FAILED', `demo step failed: netctl ${args.join(' ')} (exit ${r.status})`);
  return r.stdout ?? '';
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function walkthrough(lab: LabState): Promise<void> {
  const L = lab.name;
  const on = (node: string, ...args: string[]) => ['--lab', L, '--node', node, ...args];
  netctl(on('n1', 'cluster', 'init'));
  const token = netctl(on('n1', 'cluster', 'join-token', 'worker', '-q'), { quiet: true }).trim();
  const tokenFile = join(labRunDir(L), 'worker.token');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  say('(token saved to ' + tokenFile + ', mode 0600 — tokens travel in files or stdin, never argv)');
  for (const n of lab.nodes.slice(1)) netctl(on(n.name, 'cluster', 'join', '--token-file', tokenFile, `${lab.nodes[0]!.underlay}:2377`));
  netctl(on('n1', 'node', 'ls'));
  netctl(on('n1', 'network', 'create', '-d', 'overlay', 'demo'));
  netctl(on('n1', 'service', 'create', '--name', 'whoami', '--replicas', '3', '-p', '8080:80', '--network', 'demo', 'whoami'));
  netctl(on('n1', 'service', 'ps', 'whoami'));

  say('\nThe routing mesh: port 8080 answers on every node and is balanced over all tasks.');
  for (const n of lab.nodes) {
    for (let i = 0; i < 3; i++) {
      let out = '';
      for (let attempt = 0; attempt < 20 && !out; attempt++) {
        const r = spawnSync('ip', ['netns', 'exec', lab.client.netns, 'curl', '-s', '-m', '3', `http://${n.underlay}:8080/`], { encoding: 'utf8' });
        out = r.status === 0 ? r.stdout : '';
        if (!out) await sleep(500);
      }
      const task = /task: (\S+)/.exec(out)?.[1] ?? '(no answer)';
      const node = /node: (\S+)/.exec(out)?.[1] ?? '?';
      say(`  client → ${n.name} (${n.underlay}:8080)  answered by ${task} on ${node}`);
    }
  }

  say('\nService discovery inside a task (embedded DNS at 127.0.0.11):');
  const tasks = JSON.parse(netctl(on('n1', 'task', 'ls', '--format', 'json'), { quiet: true, allowFail: true }) || '[]') as Array<{ name?: string; id?: string }>;
  const t = tasks.find((x) => x.name?.startsWith('whoami.'));
  if (t?.name) {
    netctl(on('n1', 'exec', t.name, '--', 'dig', '+short', '@127.0.0.11', 'whoami'), { allowFail: true });
    netctl(on('n1', 'exec', t.name, '--', 'dig', '+short', '@127.0.0.11', 'tasks.whoami'), { allowFail: true });
    netctl(on('n1', 'exec', t.name, '--', 'curl', '-s', '-m', '3', 'http://whoami/'), { allowFail: true });
  }

  say('\nA real image: Debian\'s nginx in Docker (built locally by native-scripts/images.sh, never pulled).');
  netctl(on('n1', 'service', 'create', '--name', 'web', '--replicas', '3', '-p', '8081:80', '--network', 'demo', NGINX_IMAGE));
  netctl(on('n1', 'service', 'ps', 'web'));
  for (const n of lab.nodes) {
    let out = '';
    for (let attempt = 0; attempt < 20 && !out; attempt++) {
      const r = spawnSync('ip', ['netns', 'exec', lab.client.netns, 'curl', '-s', '-m', '3', `http://${n.underlay}:8081/`], { encoding: 'utf8' });
      out = r.status === 0 ? r.stdout.trim() : '';
      if (!out) await sleep(500);
    }
    say(`  client → ${n.name} (${n.underlay}:8081)  ${out || '(no answer)'}`);
  }
}

/** The real-image service of the demo (native-scripts/images.sh builds it). */
const NGINX_IMAGE = 'meshd/nginx:1';

export function demoCommand(): Command {
  return new Command('demo')
    .description('the full demo on a 3-node lab, kept up until Ctrl-C (what `npm start` runs)')
    .option('--name <lab>', 'lab name', 'demo')
    .option('--nodes <n>', 'number of nodes', '3')
    .option('--lab-only', 'only bring up the lab (no cluster, network or service)')
    .option('--exit-after <seconds>', 'tear down after this many seconds instead of waiting for Ctrl-C')
    .action(async (o: { name: string; nodes: string; labOnly?: boolean; exitAfter?: string }) => {
      const name = validateLabName(o.name);
      const nodes = parseNodeCount(o.nodes);
      if (readState(name)) say(`removing leftovers of a previous lab ${name}`);
      await labDown(realExec, name); // idempotent: also clears a crashed previous run
      say(`$ netctl lab up --nodes ${nodes} --name ${name}`);
      const s = await labUp(realExec, { name, nodes, onProgress: (m) => say(`• ${m}`) });
      let failed: unknown;
      try {
        if (!o.labOnly) await walkthrough(s);
      } catch (e) {
        failed = e;
        say(`\n${(e as Error).message} — the lab stays up so you can look around.`);
      }
      say('\nTry, in another terminal (the lab is called ' + name + '):');
      // Every line below works as printed (test/integration/lab/demo.test.ts runs them all).
      const L = name === 'demo' ? '' : ` --lab ${name}`;
      say('  npx netctl lab ls');
      say(`  npx netctl${L} --node n1 service ps web           # or: service ls, node ls, network ls (n1 is the manager)`);
      say(`  npx netctl${L} --node n1 service scale whoami=5`);
      say(`  npx netctl${L} --node n1 service logs --tail 3 web   # every task's output, prefixed with the task (-f follows)`);
      say(`  npx netctl${L} --node n1 service update --image meshd/nginx:2 web   # rolling update to another tag`);
      say(`  npx netctl${L} --node n3 debug members`);
      say(`  npx netctl${L} --node n3 debug lb --service whoami`);
      say(`  npx netctl${L} --node n3 debug fdb`);
      say(`  npx netctl${L} --node n2 debug dns whoami`);
      say(`  npx netctl lab client --name ${name} -- curl -s http://${s.nodes[2]!.underlay}:8080/`);
      say(`  npx netctl lab client --name ${name} -- curl -s http://${s.nodes[1]!.underlay}:8081/`);
      say('\nPress Ctrl-C to tear the lab down.');
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
      say(labDownSummary(name, r));
      if (failed) throw failed;
    });
}
