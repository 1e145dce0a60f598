/**
 * A stray positional argument is refused with one line and exit 2 before any action runs (commander 12
 * accepts and drops excess arguments by default: `netctl lab up p6 --nodes 2` created the default lab).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runNetctl } from '../../../src/cli/netctl.js';

async function run(argv: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  try {
    return { code: await runNetctl(argv), err };
  } finally {
    process.stderr.write = write;
  }
}

for (const argv of [['lab', 'up', 'p6', '--nodes', '2'], ['lab', 'ls', 'extra'], ['service', 'ls', 'web'], ['debug', 'members', 'x', 'y']]) {
  test(`netctl ${argv.join(' ')}: refused, exit 2, one line naming the problem`, async () => {
    const r = await run(argv);
    assert.equal(r.code, 2);
    const lines = r.err.trim().split('\n');
    assert.equal(lines.length, 1, r.err);
    assert.match(lines[0]!, /^netctl: too many arguments/);
  });
}
