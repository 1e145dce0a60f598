/**
 * Fast start (issue 16 §3): what `meshd` loads before it answers must not include the manager,
 * the stores (etcd's gRPC stack, better-sqlite3) or x509 — those are reached only through
 * dynamic import(), i.e. on nodes that run a manager, join or renew a certificate. Checked on
 * the module graph esbuild sees (static imports and requires from src/bin/meshd.ts), so a new
 * static import that drags them back in fails here, not as a slower start nobody notices.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { build, type Metafile } from 'esbuild';
import { ROOT } from '../../helpers/cli.js';

const FORBIDDEN = [/^etcd3$/, /^@peculiar\/x509$/, /^better-sqlite3$/, /^src\/manager\/(manager|server|join|control\/)/, /^src\/adapters\/store\/(etcd|sqlite)/, /^src\/adapters\/pki\/(ca|crypto)/];

async function staticGraph(entry: string): Promise<Map<string, string>> {
  const r = await build({ absWorkingDir: ROOT, entryPoints: [entry], bundle: true, platform: 'node', format: 'esm', packages: 'external', write: false, metafile: true, logLevel: 'silent', outdir: '/nonexistent' });
  const inputs = (r.metafile as Metafile).inputs;
  const via = new Map<string, string>([[entry, '(entry)']]);
  const todo = [entry];
  while (todo.length) {
    const f = todo.pop()!;
    for (const i of inputs[f]?.imports ?? []) {
      if (i.kind === 'dynamic-import' || via.has(i.path)) continue;
      via.set(i.path, f);
      if (!i.external) todo.push(i.path);
    }
  }
  return via;
}

test('the running agent reaches the manager, the stores and x509 only through dynamic import()', { timeout: 60_000 }, async () => {
  const graph = await staticGraph('src/bin/meshd-agent.ts');
  assert.ok([...graph.keys()].some((p) => p.startsWith('src/agent/') && p.includes('manager-link')), 'the walk follows the agent and its cluster link');
  const bad = [...graph.entries()].filter(([p]) => FORBIDDEN.some((re) => re.test(p)));
  assert.deepEqual(bad.map(([p, from]) => `${p} (imported by ${from})`), []);
});

test('meshd --help / --version load neither the schema nor the agent; --check-config not the agent', { timeout: 60_000 }, async () => {
  const help = await staticGraph('src/bin/meshd.ts');
  assert.deepEqual([...help.keys()].filter((p) => p === 'zod' || p.startsWith('src/agent/') || p.startsWith('src/manager/') || p === 'src/bin/meshd-config.ts'), []);
  const check = await staticGraph('src/bin/meshd-config.ts');
  assert.ok(check.has('zod'));
  assert.deepEqual([...check.keys()].filter((p) => p.startsWith('src/agent/') || p.startsWith('src/manager/') || FORBIDDEN.some((re) => re.test(p))), []);
});
