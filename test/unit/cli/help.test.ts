/**
 * `--help` of every netctl command: walks the whole commander tree of the real program and
 * fails on any command without a description, any leaf without an "Examples:" section,
 * any example table entry naming no command, and any example that does not parse with the
 * real program (unknown option, missing required option) or does not run its own command.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { buildProgram } from '../../../src/cli/netctl.js';
import { allCommands, commandPath, HELP, renderEpilog } from '../../../src/cli/help-examples.js';

const program = buildProgram(() => undefined);
const commands = allCommands(program);
const leaves = commands.filter((c) => c.commands.length === 0);

/** The full --help text of a command, as printed (built-in help plus the epilog). */
function helpOf(c: Command): string {
  let out = '';
  c.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  c.outputHelp();
  return out;
}

/** Splits a shell line into netctl invocations: words, double/single quotes; cut at | > < && and # comments. */
export function invocations(line: string): string[][] {
  const segments: string[][] = [[]];
  const re = /"([^"]*)"|'([^']*)'|(&&|\||>|<|#)|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) {
    if (m[3] === '#') break;
    if (m[3] === '>' || m[3] === '<') {
      re.exec(line); // the file name
      continue;
    }
    if (m[3]) {
      segments.push([]);
      continue;
    }
    segments[segments.length - 1]!.push(m[1] ?? m[2] ?? m[4]!);
  }
  return segments.filter((s) => s[0] === 'netctl').map((s) => s.slice(1));
}

/** Parses argv with a fresh program whose actions only record which command ran. */
async function dryRun(argv: string[]): Promise<{ ran: string | null; error: string | null }> {
  const p = buildProgram(() => undefined);
  let ran: string | null = null;
  let err = '';
  for (const c of [p, ...allCommands(p)]) {
    c.configureOutput({ writeOut: () => undefined, writeErr: (s) => (err += s) });
    if (c.commands.length === 0) c.action(() => void (ran = commandPath(c)));
  }
  try {
    await p.parseAsync(argv, { from: 'user' });
    return { ran, error: null };
  } catch (e) {
    return { ran, error: err || (e as Error).message };
  }
}

describe('netctl --help', () => {
  test('the tree is what we think it is (sanity)', () => {
    assert.ok(leaves.length >= 50, `only ${leaves.length} leaf commands`);
    for (const p of ['service update', 'stack deploy', 'debug trace', 'exec', 'lab fault block']) {
      assert.ok(leaves.some((c) => commandPath(c) === p), p);
    }
  });

  test('every command and group has a description', () => {
    const missing = commands.filter((c) => !c.description().trim()).map(commandPath);
    assert.deepEqual(missing, []);
  });

  test('every leaf command has an Examples: section after Usage and options', () => {
    const missing: string[] = [];
    for (const c of leaves) {
      const h = helpOf(c);
      const usage = h.indexOf('Usage: netctl ');
      const opts = h.indexOf('Options:');
      const ex = h.indexOf('\nExamples:\n  netctl ');
      if (usage !== 0 || opts < 0 || ex < opts) missing.push(commandPath(c));
    }
    assert.deepEqual(missing, [], `commands without examples: add them to src/cli/help-examples.ts`);
  });

  test('exactly one Examples: section (epilogs from command files are replaced, not stacked)', () => {
    for (const c of leaves) assert.equal(helpOf(c).split('Examples:').length, 2, commandPath(c));
  });

  test('the example table names only real commands', () => {
    const paths = new Set(commands.map(commandPath));
    assert.deepEqual(Object.keys(HELP).filter((k) => !paths.has(k)), []);
  });

  test('every example parses with the real program and runs its own command', async () => {
    const bad: string[] = [];
    for (const [path, h] of Object.entries(HELP)) {
      assert.ok(h.examples.length > 0, path);
      for (const line of h.examples) {
        assert.match(line, /^netctl /, line);
        const runs = invocations(line);
        let mine = false;
        for (const argv of runs) {
          const r = await dryRun(argv);
          if (r.error) bad.push(`${line}: ${r.error.trim()}`);
          if (r.ran === path) mine = true;
        }
        if (!mine) bad.push(`${line}: does not run "${path}"`);
      }
    }
    assert.deepEqual(bad, []);
  });

  test('the dry run does catch a bad example', async () => {
    assert.match((await dryRun(['service', 'create', '--name', 'x', '--replica', '2', 'whoami'])).error ?? '', /unknown option '--replica'/);
    assert.match((await dryRun(['stack', 'deploy', 'shop'])).error ?? '', /required option '-c, --compose-file <file>'/);
    assert.equal((await dryRun(['service', 'ls', '-q'])).ran, 'service ls');
    // docker semantics: options after IMAGE belong to the task's command
    assert.equal((await dryRun(['service', 'create', '--name', 'p', 'busybox', 'sh', '-c', 'ping web'])).error, null);
  });

  test('invocations: quotes, pipes, redirections and comments', () => {
    assert.deepEqual(invocations('netctl keys generate | netctl --node n1 keys install'), [['keys', 'generate'], ['--node', 'n1', 'keys', 'install']]);
    assert.deepEqual(invocations('netctl a -q > worker.token'), [['a', '-q']]);
    assert.deepEqual(invocations('netctl stack deploy -c - s < f.yml'), [['stack', 'deploy', '-c', '-', 's']]);
    assert.deepEqual(invocations('netctl x sh -c "ping web"   # note'), [['x', 'sh', '-c', 'ping web']]);
  });

  test('epilog layout', () => {
    assert.equal(renderEpilog({ examples: ['netctl a', 'netctl b'], notes: ['n.'] }), '\nExamples:\n  netctl a\n  netctl b\n\nn.');
  });
});
