/** The core-purity lint rule (ARCHITECTURE §2) must actually fire. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';
import { ROOT } from '../../helpers/cli.js';

const eslint = new ESLint({ cwd: ROOT });
const lint = async (code: string, filePath: string) => (await eslint.lintText(code, { filePath: `${ROOT}/${filePath}` }))[0]!.messages.map((m) => m.ruleId);

const banned: Array<[string, string]> = [
  ['node:dgram import', "import dgram from 'node:dgram';\nexport const x = dgram;"],
  ['fs import', "import { readFileSync } from 'fs';\nexport const x = readFileSync;"],
  ['child_process', "import { spawn } from 'node:child_process';\nexport const x = spawn;"],
  ['setTimeout', 'export const x = () => setTimeout(() => 1, 5);'],
  ['Date.now', 'export const x = () => Date.now();'],
  ['new Date()', 'export const x = () => new Date();'],
  ['Math.random', 'export const x = () => Math.random();'],
  ['process', 'export const x = () => process.env;'],
  ['adapter import', "import { realExec } from '../adapters/exec.js';\nexport const x = realExec;"],
];

for (const [name, code] of banned) {
  test(`src/core rejects ${name}`, async () => {
    const rules = await lint(code, 'src/core/purity-probe.ts');
    assert.ok(rules.some((r) => r && r.startsWith('no-restricted')), `${name} not caught: ${rules.join(',')}`);
  });
}

test('the same code is allowed in src/adapters', async () => {
  const rules = await lint("import dgram from 'node:dgram';\nexport const x = () => [dgram, Date.now(), setTimeout];", 'src/adapters/purity-probe.ts');
  assert.deepEqual(rules.filter((r) => r && r.startsWith('no-restricted')), []);
});

test('pure code passes in src/core', async () => {
  const rules = await lint('export function f(now: number): number {\n  return now + 1;\n}', 'src/core/purity-probe.ts');
  assert.deepEqual(rules, []);
});
