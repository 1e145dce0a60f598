/** `meshd --check-config FILE`: effective values on success; one line naming the key and a non-zero exit on a bad config. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MESHD } from '../../helpers/cli.js';
import { journalLine, syslogPriority } from '../../../src/adapters/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-check-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function check(cfg: unknown, ...flags: string[]): { code: number; stdout: string; stderr: string } {
  const f = join(dir, `c${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(f, typeof cfg === 'string' ? cfg : JSON.stringify(cfg));
  const r = spawnSync(process.execPath, [MESHD, '--check-config', f, ...flags], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

test('a valid config prints every effective value, derived ones included; flags apply over the file', () => {
  const r = check({ nodeName: 'a1', advertiseAddr: '192.0.2.1', gossip: { preset: 'local' } }, '--log-level', 'warn');
  assert.equal(r.code, 0, r.stderr);
  const eff = JSON.parse(r.stdout) as Record<string, any>;
  assert.equal(eff.logLevel, 'warn');
  assert.equal(eff.controlSocket, '/run/meshd/meshd.sock');
  assert.equal(eff.gossip.effective.probeIntervalMs, 200, 'the local preset, resolved');
  assert.equal(eff.manager.nodeDownGraceMs, 5000);
  assert.ok(eff.dns.workers >= 1);
});

for (const [what, cfg, key] of [
  ['wrong type', { nodeName: 'a1', advertiseAddr: '192.0.2.1', gossip: { bindPort: 'x' } }, 'gossip.bindPort'],
  ['unknown key', { nodeName: 'a1', advertiseAddr: '192.0.2.1', dns: { ttl: 5 } }, "'ttl'"],
  ['missing required key', { nodeName: 'a1' }, 'advertiseAddr'],
  ['gossip override out of bounds', { nodeName: 'a1', advertiseAddr: '192.0.2.1', gossip: { overrides: { probeIntervalMs: 5 } } }, 'gossip.probeIntervalMs'],
  ['gossip not an object', { nodeName: 'a1', advertiseAddr: '192.0.2.1', gossip: 'lan' }, 'gossip'],
  ['not JSON', '{"nodeName":', 'JSON'],
] as const) {
  test(`a bad config (${what}) → one line naming ${key}, non-zero exit, nothing on stdout`, () => {
    const r = check(cfg);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /^meshd: /);
    assert.ok(lines[0]!.includes(key), `${lines[0]} names ${key}`);
  });
}

test('journal priorities: pino levels map to syslog ones, as a <N> prefix journald reads', () => {
  assert.deepEqual([10, 20, 30, 40, 50, 60].map(syslogPriority), [7, 7, 6, 4, 3, 2]);
  assert.equal(journalLine('{"level":50,"msg":"x"}\n'), '<3>{"level":50,"msg":"x"}\n');
  assert.equal(journalLine('plain\n'), '<6>plain\n');
});
