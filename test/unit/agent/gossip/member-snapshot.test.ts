/**
 * The gossip member snapshot on disk (agent/gossip/member-snapshot.ts): debounced writes on a ManualClock
 * (a burst of changes is one write, an unchanged list none), flush at once, no write while the agent has
 * not rejoined and sees nobody, and a corrupt file read as empty with one warning, then replaced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../../../src/adapters/logger.js';
import { ManualClock } from '../../../../src/core/clock.js';
import type { RememberedMember } from '../../../../src/core/gossip/index.js';
import { MemberSnapshot, WRITE_DELAY_MS, memberSnapshotFile } from '../../../../src/agent/gossip/member-snapshot.js';

function rig(current: () => RememberedMember[] | undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'msnap-'));
  const warnings: string[] = [];
  const log = { info: () => undefined, warn: (_o: unknown, msg: string) => warnings.push(msg), error: () => undefined, debug: () => undefined, child: () => log } as unknown as Logger;
  const clock = new ManualClock(0);
  const snap = new MemberSnapshot({ dataDir: join(dir, 'data'), clock, log, current });
  return { dir, warnings, clock, snap, done: () => rmSync(dir, { recursive: true, force: true }) };
}
const m = (i: number): RememberedMember => ({ name: `n${i}`, addr: `10.0.0.${i}:7946` });

test('a burst of membership changes is one write, WRITE_DELAY_MS after the first; an unchanged list is not rewritten', () => {
  let list = [m(2)];
  const r = rig(() => list);
  try {
    // 64-node flap storm: 500 changes over 4.99 s
    for (let i = 0; i < 500; i++) {
      list = [m(2), m(3 + (i % 60))];
      r.snap.changed();
      r.clock.advance(WRITE_DELAY_MS / 500 - 0.02);
    }
    assert.equal(r.snap.writes, 0, 'nothing before the delay');
    r.clock.set(WRITE_DELAY_MS);
    assert.equal(r.snap.writes, 1, 'one write for the burst');
    const onDisk = JSON.parse(readFileSync(r.snap.file, 'utf8')) as { members: RememberedMember[] };
    assert.deepEqual(onDisk.members, list, 'the list as it was at the write');
    assert.ok(!existsSync(r.snap.file + '.tmp'), 'written through a temp file renamed into place');
    assert.deepEqual(readdirSync(join(r.dir, 'data')).filter((f) => f.includes('.tmp')), [], 'no temp file left (adapters/fs/atomic.ts)');
    r.snap.changed();
    r.clock.advance(WRITE_DELAY_MS);
    assert.equal(r.snap.writes, 1, 'same list: no write');
    list = [m(2)];
    r.snap.changed();
    r.clock.advance(WRITE_DELAY_MS);
    assert.equal(r.snap.writes, 2);
    assert.equal(r.clock.pendingTimers, 0);
  } finally {
    r.done();
  }
});

test('flush writes at once and disarms the pending write; nothing is written while current() says not now', () => {
  let list: RememberedMember[] | undefined;
  const r = rig(() => list);
  try {
    r.snap.changed();
    r.clock.advance(WRITE_DELAY_MS);
    r.snap.flush();
    assert.equal(r.snap.writes, 0, 'not rejoined and nobody seen: what we remember stays');
    list = [m(2), m(3)];
    r.snap.changed();
    r.snap.flush();
    assert.equal(r.snap.writes, 1);
    assert.equal(r.clock.pendingTimers, 0, 'the armed write was disarmed');
    const again = new MemberSnapshot({ dataDir: join(r.dir, 'data'), clock: r.clock, log: {} as Logger, current: () => [] });
    assert.deepEqual(again.load(), [m(2), m(3)], 'the next run reads it');
  } finally {
    r.done();
  }
});

test('a corrupt or unreadable file: one warning, read as no members, replaced by the next write', () => {
  const r = rig(() => [m(4)]);
  try {
    assert.deepEqual(r.snap.load(), [], 'no file yet: no members, no warning');
    assert.deepEqual(r.warnings, []);
    const file = memberSnapshotFile(join(r.dir, 'data'));
    r.snap.flush();
    for (const garbage of ['{"version":1,"members":[{"name":"n2","ad', '\u0000\u0001', '{"version":9,"members":[]}']) {
      writeFileSync(file, garbage);
      r.warnings.length = 0;
      const s = new MemberSnapshot({ dataDir: join(r.dir, 'data'), clock: r.clock, log: { warn: (_o: unknown, msg: string) => r.warnings.push(msg) } as unknown as Logger, current: () => [m(4)] });
      assert.deepEqual(s.load(), [], JSON.stringify(garbage));
      assert.equal(r.warnings.length, 1, 'one warning');
      s.changed();
      r.clock.advance(WRITE_DELAY_MS);
      assert.equal(s.writes, 1, 'replaced on the next write (even with the list the old good file held)');
      assert.deepEqual(s.load(), [m(4)]);
    }
  } finally {
    r.done();
  }
});
