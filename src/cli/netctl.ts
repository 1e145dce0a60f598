/**
 * netctl — the CLI for people. Docker conventions: -H/--host, tables by default and
 * --format json, one clear line on error, exit codes from the error table.
 */
import { Command, CommanderError } from 'commander';
import { toMeshError } from '../core/errors.js';
import { notLeaderHint } from '../api/not-leader.js';
import { VERSION } from '../version.js';
import { clientFor, type GlobalOpts } from './context.js';
import { labCommand } from './lab-commands.js';
import { demoCommand } from './demo.js';
import { debugCommand } from './debug-commands.js';
import { dnsDebugCommands } from './dns-commands.js';
import { lbDebugCommand } from './lb-commands.js';
import { workerCommands, workerDebugCommands } from './worker-commands.js';
import { keysCommand } from './keys-commands.js';
import { traceCommand } from './trace-commands.js';
import { clusterCommand } from './cluster-commands.js';
import { networkCommand } from './network-commands.js';
import { nodeCommand } from './node-commands.js';
import { serviceCommand } from './service-commands.js';
import { configCommand, secretCommand } from './file-commands.js';
import { stackCommand } from './stack-commands.js';
import { containerCommands } from './container-commands.js';
import { formatted, table } from './format.js';
import { applyHelp } from './help-examples.js';

export interface RunResult {
  code: number;
}

export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('netctl');
  program
    .description('netctl: drive and debug a meshd cluster')
    .version(VERSION, '-v, --version')
    .option('-H, --host <url>', 'agent control socket, unix:///path/to.sock (default $MESHD_HOST or /run/meshd/meshd.sock)')
    .option('--lab <lab>', 'talk to an agent of this lab (with --node)')
    .option('--node <node>', 'node to ask: with --lab (or without -H/$MESHD_HOST) that lab node\'s socket (default n1); with -H/$MESHD_HOST the node (name or address) the agent asks for per-node views (debug lb/dns/fdb/sandbox/members, task ls, exec)')
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `netctl: ${s.slice(7)}` : s),
    });

  program.addCommand(labCommand(setExit));
  program.addCommand(demoCommand());
  const debug = debugCommand(() => program.opts<GlobalOpts>());
  for (const c of dnsDebugCommands(() => program.opts<GlobalOpts>())) debug.addCommand(c);
  debug.addCommand(lbDebugCommand(() => program.opts<GlobalOpts>()));
  for (const c of workerDebugCommands(() => program.opts<GlobalOpts>())) debug.addCommand(c);
  debug.addCommand(traceCommand(() => program.opts<GlobalOpts>()));
  program.addCommand(debug);
  for (const c of workerCommands(() => program.opts<GlobalOpts>(), setExit)) program.addCommand(c);
  program.addCommand(keysCommand(() => program.opts<GlobalOpts>()));
  for (const make of [clusterCommand, networkCommand, nodeCommand, serviceCommand, secretCommand, configCommand]) program.addCommand(make(() => program.opts<GlobalOpts>()));
  program.addCommand(stackCommand(() => program.opts<GlobalOpts>()));
  for (const c of containerCommands(() => program.opts<GlobalOpts>(), setExit)) program.addCommand(c);

  program
    .command('info')
    .description('show the agent\'s view of itself (like docker info)')
    .option('--format <fmt>', 'table|json|TEMPLATE (e.g. \'{{.name}}\')')
    .action(async (o: { format?: string }) => {
      const info = await clientFor(program.opts<GlobalOpts>()).call<Record<string, unknown>>('GET', '/v1/info');
      if (formatted(info, o.format)) return;
      process.stdout.write(table(['KEY', 'VALUE'], Object.entries(info).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])));
    });

  applyHelp(program);
  for (const c of program.commands) propagate(c);
  return program;
}

/**
 * Subcommands added via addCommand don't inherit settings; copy the error behaviour down. Excess
 * arguments are refused (commander 12 accepts and drops them): `lab up p6 --nodes 2` used to create the
 * default lab, silently ignoring `p6`.
 */
function propagate(c: Command): void {
  c.exitOverride();
  c.allowExcessArguments(false);
  c.configureOutput({ writeErr: (s) => process.stderr.write(s.startsWith('error: ') ? `netctl: ${s.slice(7)}` : s) });
  c.showSuggestionAfterError(true);
  for (const s of c.commands) propagate(s);
}

export async function runNetctl(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; usage errors already printed one line by commander
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      if (e.code === 'commander.executeSubCommandAsync') return e.exitCode;
      return 2;
    }
    const err = toMeshError(e);
    const hint = notLeaderHint(err);
    process.stderr.write(`netctl: ${err.message}\n${hint ? `netctl: ${hint}\n` : ''}`);
    return err.exitCode;
  }
}
