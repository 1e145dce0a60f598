/**
 * Every layer boundary rule (eslint.config.mjs, ARCHITECTURE §2) must actually fire, and src has no
 * import cycle (a cycle means two modules are one concern split in two, or an arrow runs the wrong way).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ESLint } from 'eslint';
import { ROOT } from '../../helpers/cli.js';

const eslint = new ESLint({ cwd: ROOT });
const restricted = async (code: string, filePath: string): Promise<string[]> =>
  (await eslint.lintText(code, { filePath: `${ROOT}/${filePath}` }))[0]!.messages
    .filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);

/** [file the probe pretends to be, import it tries, must it be refused]. */
const cases: Array<[string, string, boolean]> = [
  ['src/adapters/x/probe.ts', '../../agent/agent.js', true],
  ['src/adapters/x/probe.ts', '../../manager/index.js', true],
  ['src/adapters/x/probe.ts', '../../cli/netctl.js', true],
  ['src/adapters/x/probe.ts', '../../lab/plan.js', true],
  ['src/adapters/x/probe.ts', '../../core/errors.js', false],
  ['src/agent/x/probe.ts', '../../lab/plan.js', true],
  ['src/agent/x/probe.ts', '../../cli/netctl.js', true],
  ['src/agent/x/probe.ts', '../../manager/index.js', false],
  ['src/agent/x/probe.ts', '../../adapters/exec.js', false],
  ['src/manager/x/probe.ts', '../../agent/agent.js', true],
  ['src/manager/x/probe.ts', '../../cli/netctl.js', true],
  ['src/manager/x/probe.ts', '../../lab/plan.js', true],
  ['src/manager/x/probe.ts', '../../adapters/api/subsystem.js', false],
  ['src/cli/probe.ts', '../agent/lb/status.js', true],
  ['src/cli/probe.ts', '../manager/control/state.js', true],
  ['src/cli/probe.ts', '../api/lb.js', false],
  ['src/cli/probe.ts', '../adapters/api/client.js', false],
  ['src/cli/probe.ts', '../lab/lab.js', false],
  ['src/api/probe.ts', '../adapters/exec.js', true],
  ['src/api/probe.ts', '../agent/agent.js', true],
  ['src/api/probe.ts', '../core/errors.js', false],
  ['src/lab/probe.ts', '../agent/agent.js', true],
  ['src/lab/probe.ts', '../manager/index.js', true],
  ['src/lab/probe.ts', '../adapters/exec.js', false],
  ['src/core/x/probe.ts', '../../adapters/exec.js', true],
  ['src/core/x/probe.ts', '../../api/lb.js', false],
];

for (const [file, spec, refused] of cases) {
  test(`${file} ${refused ? 'may not' : 'may'} import ${spec}`, async () => {
    const msgs = await restricted(`import * as m from '${spec}';\nexport const x = m;`, file);
    if (refused) assert.ok(msgs.length > 0, `not refused: ${file} → ${spec}`);
    else assert.deepEqual(msgs, [], `refused: ${file} → ${spec}`);
  });
}

/** Relative imports (value and type) of every .ts file under src. */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const src = readFileSync(p, 'utf8');
        const deps = [...src.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+'(\.{1,2}\/[^']+)'/g)]
          .map((m) => relative(ROOT, resolve(dirname(p), m[1]!.replace(/\.js$/, '.ts'))));
        g.set(relative(ROOT, p), deps);
      }
    }
  };
  walk(join(ROOT, 'src'));
  return g;
}

test('src has no import cycle (type imports count too)', () => {
  const g = importGraph();
  const state = new Map<string, 1 | 2>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (n: string): void => {
    state.set(n, 1);
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (!g.has(d)) continue;
      if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].join(' → '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of g.keys()) if (!state.has(n)) visit(n);
  assert.ok(g.size > 100, `graph read: ${g.size} files`);
  assert.deepEqual(cycles, []);
});
