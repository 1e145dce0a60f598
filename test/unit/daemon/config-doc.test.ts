/**
 * The documented config (native-scripts/meshd.example.{json,md}) is generated from the schema:
 * the committed files must equal a fresh generation, so a key added, removed or re-documented
 * in src/core/config.ts without `npm run gen:config-doc` fails here instead of drifting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_SOURCE, EXAMPLE_JSON, EXAMPLE_MD, renderConfigDoc } from '../../../scripts/gen-config-doc.js';
import { effectiveConfig, loadConfig } from '../../../src/bin/meshd-config.js';
import { agentConfigSchema } from '../../../src/core/config.js';

test('the committed example config and its key table equal what the schema generates (npm run gen:config-doc)', () => {
  const { json, md } = renderConfigDoc();
  assert.equal(readFileSync(EXAMPLE_JSON, 'utf8'), json, 'native-scripts/meshd.example.json is stale: run npm run build && npm run gen:config-doc');
  assert.equal(readFileSync(EXAMPLE_MD, 'utf8'), md, 'native-scripts/meshd.example.md is stale: run npm run build && npm run gen:config-doc');
});

test('every schema key is in the table, and the example passes the daemon\'s own validation', () => {
  const { md } = renderConfigDoc();
  const walk = (shape: Record<string, unknown>, prefix: string): string[] =>
    Object.entries(shape).flatMap(([k, s]) => {
      let inner = s as { _def: { innerType?: unknown; schema?: unknown }; shape?: Record<string, unknown> };
      while (inner._def.innerType || inner._def.schema) inner = (inner._def.innerType ?? inner._def.schema) as typeof inner;
      return [prefix + k, ...(inner.shape ? walk(inner.shape, `${prefix}${k}.`) : [])];
    });
  for (const key of walk(agentConfigSchema.shape, '')) assert.ok(md.includes(`| \`${key}\` |`), `${key} is documented`);
  const cfg = loadConfig({ config: EXAMPLE_JSON });
  const eff = effectiveConfig(cfg, 2) as { gossip: { effective: { probeIntervalMs: number } }; manager: { nodeDownGraceMs: number } };
  assert.equal(eff.gossip.effective.probeIntervalMs, 1000, 'lan preset timers are filled in');
  assert.equal(eff.manager.nodeDownGraceMs, 10_000);
});

test('a key without a doc comment stops the generator, naming it', () => {
  const src = readFileSync(CONFIG_SOURCE, 'utf8').replace(/\/\*\* TTL of our records[\s\S]*?\*\/\n/, '').replace(/\/\*\*\n\s*\* TTL of our records[\s\S]*?\*\/\n/, '');
  assert.notEqual(src, readFileSync(CONFIG_SOURCE, 'utf8'), 'the fixture removed a doc comment');
  assert.throws(() => renderConfigDoc(src), /config key dns\.ttlSeconds has no doc comment/);
});
