/**
 * `netctl stack deploy|ls|services|ps|rm` (docker stack, swarm orchestrator) from a Compose
 * file. Parsing and the create/update/prune plan are pure (src/core/compose); this file
 * only reads the file and executes the plan against the manager API, then follows the
 * stack until every service converged unless --detach.
 *
 * Objects are named `<stack>-<name>` (meshd names are DNS labels, so not docker's `_`);
 * a service belongs to a stack by its MESHD_STACK_NAMESPACE env marker, a network by its
 * `<stack>-` name prefix (stack names have no `-`, so the prefix is unambiguous).
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { MeshError, isMeshError } from '../core/errors.js';
// Not the compose index: parse.ts loads the YAML library, which only `stack deploy` needs
// (imported there on demand, so every other netctl call starts faster).
import { planDeploy, type ExistingService } from '../core/compose/diff.js';
import { isStackNetworkName, stackOf, translateStack, validateStackName } from '../core/compose/translate.js';
import type { GlobalOpts } from './context.js';
import { deployStackFiles, removeStackFiles } from './stack-files.js';
import { managerCall } from './cluster-commands.js';
import { formatted, table } from './format.js';
import { ago, printServiceList, stateWithHealth, type TaskView } from './service-commands.js';
import { parseDuration } from './service-flags.js';

interface ServiceView extends ExistingService {
  name: string;
  mode: string;
  image: string;
  replicas: { running: number; desired: number };
  update: { state: string; message: string } | null;
  ports: Array<{ published: number; target: number; proto: string }>;
}
interface NetworkView {
  id: string;
  name: string;
}

type Call = ReturnType<typeof managerCall>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const err = (m: string) => process.stderr.write(`${m}\n`);

function readCompose(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new MeshError('MESHD_BAD_ARGUMENT', `cannot read compose file ${file === '-' ? '(stdin)' : file}: ${(e as Error).message}`);
  }
}

async function stackServices(call: Call, stack: string): Promise<ServiceView[]> {
  return (await call<ServiceView[]>('GET', '/services')).filter((s) => stackOf(s.spec) === stack);
}

/** Follows the stack's services until each runs its desired count with no update in flight. */
async function converge(call: Call, stack: string, names: readonly string[], timeout: string): Promise<void> {
  const deadline = Date.now() + parseDuration(timeout, '--timeout');
  const last = new Map<string, string>();
  for (;;) {
    const all = new Map((await stackServices(call, stack)).map((s) => [s.name, s]));
    let done = true;
    for (const n of names) {
      const s = all.get(n);
      if (!s) throw new MeshError('MESHD_NOT_FOUND', `service ${n} disappeared while deploying stack ${stack}`);
      const u = s.update?.state;
      if (u === 'paused' || u === 'rollback_paused') throw new MeshError('MESHD_NOT_READY', `service ${n}: update ${u}: ${s.update!.message}`);
      const settled = (!u || u === 'completed' || u === 'rollback_completed') && s.replicas.running === s.replicas.desired;
      const line = `${n}: ${s.replicas.running}/${s.replicas.desired} running${u && u !== 'completed' ? ` (${u})` : ''}`;
      if (last.get(n) !== line) err(line);
      last.set(n, line);
      if (!settled) done = false;
    }
    if (done) return void err(`verify: stack ${stack} converged`);
    if (Date.now() > deadline) {
      throw new MeshError('MESHD_NOT_READY', `stack ${stack} did not converge within ${timeout}: see netctl stack ps ${stack}`);
    }
    await sleep(500);
  }
}

/** DELETE with retries while the manager says tasks are still detaching (MESHD_NOT_READY). */
async function removeNetwork(call: Call, name: string, deadline: number): Promise<void> {
  for (;;) {
    try {
      await call('DELETE', `/networks/${encodeURIComponent(name)}`);
      return;
    } catch (e) {
      if (!isMeshError(e) || e.code !== 'MESHD_NOT_READY' || Date.now() > deadline) throw e;
      await sleep(500);
    }
  }
}

export function stackCommand(globals: () => GlobalOpts): Command {
  const call = managerCall(globals);
  const stack = new Command('stack').description('stacks of services from a Compose file (manager only)');

  stack
    .command('deploy')
    .description('deploy or update a stack from a Compose file')
    .argument('<stack>', 'stack name: 1-30 of [a-z0-9]')
    .requiredOption('-c, --compose-file <file>', 'Compose file (- for stdin)')
    .option('--prune', 'remove services of the stack that are no longer in the file')
    .option('-d, --detach', 'return at once instead of waiting for convergence')
    .option('--timeout <d>', 'how long to wait for convergence', '180s')
    .action(async (name: string, o: { composeFile: string; prune?: boolean; detach?: boolean; timeout: string }) => {
      validateStackName(name);
      parseDuration(o.timeout, '--timeout');
      const text = readCompose(o.composeFile);
      const { parseCompose } = await import('../core/compose/parse.js');
      let plan;
      try {
        plan = translateStack(name, parseCompose(text, { env: (k) => process.env[k] }));
      } catch (e) {
        if (isMeshError(e)) throw new MeshError(e.code, `${o.composeFile === '-' ? '(stdin)' : o.composeFile}: ${e.message}`, e.details ? { ...e.details } : undefined);
        throw e;
      }
      for (const w of plan.warnings) err(`warning: ${w}`);
      const [services, networks] = await Promise.all([call<ServiceView[]>('GET', '/services'), call<NetworkView[]>('GET', '/networks')]);
      const steps = planDeploy(plan, services, networks.map((n) => n.name), o.prune === true);
      await deployStackFiles(call, name, plan.files, o.composeFile);
      for (const s of steps) {
        switch (s.kind) {
          case 'create-network':
            process.stdout.write(`Creating network ${s.name}\n`);
            await call('POST', '/networks', s.request);
            break;
          case 'create-service':
            process.stdout.write(`Creating service ${s.name}\n`);
            await call('POST', '/services', s.spec);
            break;
          case 'update-service':
            process.stdout.write(`Updating service ${s.name}\n`);
            await call('POST', `/services/${encodeURIComponent(s.id)}/update`, { spec: s.spec, version: s.version, force: false });
            break;
          case 'unchanged-service':
            process.stdout.write(`Service ${s.name} is up to date\n`);
            break;
          case 'remove-service':
            process.stdout.write(`Removing service ${s.name}\n`);
            await call('DELETE', `/services/${encodeURIComponent(s.id)}`);
            break;
        }
      }
      if (!o.detach) await converge(call, name, plan.services.map((s) => s.name), o.timeout);
    });

  stack
    .command('ls')
    .description('list stacks')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const counts = new Map<string, number>();
      for (const s of await call<ServiceView[]>('GET', '/services')) {
        const st = stackOf(s.spec);
        if (st !== undefined) counts.set(st, (counts.get(st) ?? 0) + 1);
      }
      const rows = [...counts].sort((a, b) => a[0].localeCompare(b[0]));
      if (formatted(rows.map(([n, c]) => ({ name: n, services: c })), o.format)) return;
      process.stdout.write(table(['NAME', 'SERVICES'], rows));
    });

  stack
    .command('services')
    .description('list the services of a stack')
    .argument('<stack>', 'stack name')
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (name: string, o: { quiet?: boolean; format?: string }) => {
      const list = await stackServices(call, validateStackName(name));
      if (list.length === 0) throw new MeshError('MESHD_NOT_FOUND', `nothing found in stack: ${name}`);
      if (formatted(list, o.format)) return;
      printServiceList(list, o.quiet);
    });

  stack
    .command('ps')
    .description('list the tasks of a stack')
    .argument('<stack>', 'stack name')
    .option('-q, --quiet', 'only ids')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (name: string, o: { quiet?: boolean; format?: string }) => {
      const svcs = await stackServices(call, validateStackName(name));
      if (svcs.length === 0) throw new MeshError('MESHD_NOT_FOUND', `nothing found in stack: ${name}`);
      const tasks = (await Promise.all(svcs.map((s) => call<TaskView[]>('GET', `/tasks?service=${encodeURIComponent(s.id)}`)))).flat();
      if (formatted(tasks, o.format)) return;
      if (o.quiet) return void process.stdout.write(tasks.map((t) => `${t.id}\n`).join(''));
      process.stdout.write(table(['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR'], tasks.map((t) => [
        t.id.slice(0, 12), t.name.slice(0, t.name.lastIndexOf('.')), t.image, t.node, t.desiredState, `${stateWithHealth(t)} ${ago(t.updatedAt)}`,
        t.error ?? (t.state === 'pending' ? t.message : null),
      ])));
    });

  stack
    .command('rm')
    .description('remove stacks: their services, their secrets and configs, then their networks')
    .argument('<stack...>', 'stack names')
    .option('--timeout <d>', 'how long to wait for tasks to leave the networks', '60s')
    .action(async (names: string[], o: { timeout: string }) => {
      const deadline = Date.now() + parseDuration(o.timeout, '--timeout');
      // Keep going past a failure (remove what can be removed), then fail with one line.
      const problems: MeshError[] = [];
      for (const name of names) {
        validateStackName(name);
        const svcs = await stackServices(call, name);
        for (const s of svcs) {
          process.stdout.write(`Removing service ${s.name}\n`);
          await call('DELETE', `/services/${encodeURIComponent(s.id)}`);
        }
        const nets = (await call<NetworkView[]>('GET', '/networks')).filter((n) => isStackNetworkName(name, n.name));
        const files = await removeStackFiles(call, name);
        if (svcs.length === 0 && nets.length === 0 && files === 0) {
          problems.push(new MeshError('MESHD_NOT_FOUND', `nothing found in stack: ${name}`));
          continue;
        }
        for (const n of nets) {
          process.stdout.write(`Removing network ${n.name}\n`);
          try {
            await removeNetwork(call, n.name, deadline);
          } catch (e) {
            if (!isMeshError(e)) throw e;
            problems.push(new MeshError(e.code, `network ${n.name}: ${e.message}`));
          }
        }
      }
      if (problems.length) throw new MeshError(problems[0]!.code, problems.map((p) => p.message).join('; '));
    });
  return stack;
}
