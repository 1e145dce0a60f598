/**
 * Test-only netctl entry with the worker commands registered the way src/cli/netctl.ts
 * will register them (global -H/--lab/--node, `exec`, `task`, `debug fdb|sandbox`), so the
 * integration test drives the real CLI code before the lead wires it into netctl.ts.
 */
import { Command, CommanderError } from 'commander';
import { toMeshError } from '../../../src/core/errors.js';
import type { GlobalOpts } from '../../../src/cli/context.js';
import { workerCommands, workerDebugCommands } from '../../../src/cli/worker-commands.js';

async function main(): Promise<number> {
  let code = 0;
  const program = new Command('netctl').option('-H, --host <url>').option('--lab <lab>').option('--node <node>').enablePositionalOptions().exitOverride();
  const g = (): GlobalOpts => program.opts<GlobalOpts>();
  for (const c of workerCommands(g, (c) => (code = c))) program.addCommand(c.exitOverride());
  const debug = new Command('debug').exitOverride();
  for (const c of workerDebugCommands(g)) debug.addCommand(c.exitOverride());
  program.addCommand(debug);
  try {
    await program.parseAsync(process.argv.slice(2), { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return 2;
    const err = toMeshError(e);
    process.stderr.write(`netctl: ${err.message}\n`);
    return err.exitCode;
  }
}

void main().then((c) => process.exit(c));
