/**
 * The persisted routing-mesh configuration (`lb-ingress.json`, src/agent/lb/ingress-side.ts load): a file that is not
 * what `save` writes — the literal `null` (it threw out of the agent's start), a number, an array, a string, a
 * missing or wrong-typed `node` / `tasks`, one bad entry, bad JSON — is read as no configuration with ONE log line
 * naming the file, never a crash and never half a configuration; a good file still loads and joins `ingress`.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FakeGossip } from '../../../helpers/fake-gossip.js';
import { IngressSide } from '../../../../src/agent/lb/ingress-side.js';
import { decodeIngressConfig } from '../../../../src/agent/lb/ingress-side.js';
import { LbState } from '../../../../src/agent/lb/state.js';
import type { LbSubsystemOptions } from '../../../../src/agent/lb/types.js';
import type { OverlaySubsystem } from '../../../../src/agent/overlay/overlay.js';
import type { Exec } from '../../../../src/adapters/exec.js';
import type { Logger } from '../../../../src/adapters/logger.js';
import { ManualClock } from '../../../../src/core/clock.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';

const root = mkdtempSync(join(tmpdir(), 'meshd-ingcfg-'));
after(() => rmSync(root, { recursive: true, force: true }));

const NODE = { ip: '10.255.0.3', mac: macFromIp('10.255.0.3') };
const T1 = { ip: '10.255.0.9', mac: macFromIp('10.255.0.9'), seen: true };

/** An ingress side over a data dir holding `content` as lb-ingress.json; every log line, by level. */
function rig(name: string, content: string) {
  const dataDir = join(root, name);
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => void lines.push({ level, obj, msg });
  const log = { info: at('info'), warn: at('warn'), error: at('error'), debug: () => undefined, child: () => log } as unknown as Logger;
  const exec: Exec = {
    run: async () => ({ code: 0, stdout: '', stderr: '' }),
    check: async () => '',
  };
  const gossip = new FakeGossip('n1');
  const o = {
    nodeName: 'n1', underlayIp: '10.99.0.1', prefix: 'x-', dataDir, gossip, clock: new ManualClock(1_000), log, exec,
    overlay: { defineNetwork() {}, addLocal() {} } as unknown as OverlaySubsystem,
  } as LbSubsystemOptions;
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(join(dataDir, 'lb-ingress.json'), content);
  const side = new IngressSide(o, new LbState('n1'), (id) => `ns-${id}`, () => undefined);
  return { side, lines, gossip, file: join(dataDir, 'lb-ingress.json') };
}

describe('lb-ingress.json that is not what save writes: empty config, one log line, no throw', () => {
  const bad: Array<[string, string]> = [
    ['null', 'null'],
    ['a number', '42'],
    ['an array', '[]'],
    ['an array of configs', JSON.stringify([{ node: NODE, tasks: {} }])],
    ['a string', '"node"'],
    ['an empty object', '{}'],
    ['no tasks', JSON.stringify({ node: NODE })],
    ['no node', JSON.stringify({ tasks: {} })],
    ['node a string', JSON.stringify({ node: '10.255.0.3', tasks: {} })],
    ['node without mac', JSON.stringify({ node: { ip: '10.255.0.3' }, tasks: {} })],
    ['node outside the ingress subnet', JSON.stringify({ node: { ip: '10.1.0.3', mac: macFromIp('10.1.0.3') }, tasks: {} })],
    ['tasks null', JSON.stringify({ node: NODE, tasks: null })],
    ['tasks an array', JSON.stringify({ node: NODE, tasks: [T1] })],
    ['tasks a number', JSON.stringify({ node: NODE, tasks: 3 })],
    ['a task entry null', JSON.stringify({ node: NODE, tasks: { t1: null } })],
    ['a task entry with a bad ip', JSON.stringify({ node: NODE, tasks: { t1: { ip: 'x', mac: T1.mac } } })],
    ['a task entry with seen not a boolean', JSON.stringify({ node: NODE, tasks: { t1: { ...T1, seen: 'yes' } } })],
    ['truncated JSON', JSON.stringify({ node: NODE, tasks: {} }).slice(0, 20)],
    ['an empty file', ''],
  ];
  for (const [what, content] of bad) {
    test(what, () => {
      const r = rig(`bad-${what.replace(/\W+/g, '-')}`, content);
      assert.doesNotThrow(() => r.side.load());
      assert.deepEqual(r.side.config(), { node: null, tasks: {} });
      assert.equal(r.side.configured, false);
      assert.equal(r.lines.length, 1, `one log line: ${JSON.stringify(r.lines.map((l) => l.msg))}`);
      assert.equal(r.lines[0]!.level, 'error');
      assert.equal(r.lines[0]!.obj.file, r.file, 'names the file');
      assert.ok(r.lines[0]!.obj.err, 'says what is wrong');
      assert.ok(!r.gossip.core.networks().includes('ingress'), 'ingress not joined');
    });
  }
});

describe('a good lb-ingress.json still loads', () => {
  test('node and tasks: configured, `ingress` joined, nothing logged', () => {
    const cfg = { node: NODE, tasks: { t1: T1, t2: { ip: '10.255.0.10', mac: macFromIp('10.255.0.10') } } };
    const r = rig('good', JSON.stringify(cfg));
    r.side.load();
    assert.deepEqual(r.side.config(), cfg);
    assert.equal(r.side.configured, true);
    assert.ok(r.side.attaches('t1') && r.side.attaches('t2'));
    assert.ok(r.gossip.core.networks().includes('ingress'));
    assert.deepEqual(r.lines.filter((l) => l.level !== 'info'), []);
  });

  test('not configured yet ({node: null, tasks: {}}) and no file at all: empty, no log line', () => {
    const r = rig('unset', JSON.stringify({ node: null, tasks: {} }));
    r.side.load();
    assert.deepEqual(r.side.config(), { node: null, tasks: {} });
    assert.deepEqual(r.lines, []);
    const none = rig('none', '');
    rmSync(none.file);
    none.side.load();
    assert.deepEqual(none.side.config(), { node: null, tasks: {} });
    assert.deepEqual(none.lines, []);
  });

  test('what save writes decodes to itself; a `__proto__` task id stays an own key', () => {
    const cfg = { node: NODE, tasks: { t1: T1 } };
    assert.deepEqual(decodeIngressConfig(JSON.stringify(cfg)), cfg);
    const odd = decodeIngressConfig(`{"node":null,"tasks":{"__proto__":${JSON.stringify(T1)}}}`);
    assert.deepEqual(Object.keys(odd.tasks), ['__proto__']);
    assert.equal(Object.getPrototypeOf(odd.tasks), Object.prototype);
  });
});
