/**
 * The one atomic write (adapters/fs/atomic.ts) and what its files' readers do with what a crash
 * can leave: the mode is exact whatever the umask (the keyring stays 0600 even over a file that was
 * wider), no temp file is left by a write that succeeded or failed, a `*.tmp-*` left by a crash
 * breaks nothing, and an empty file (a crash before fsync on a filesystem that shows the rename
 * without the data) is refused loudly (keyring) or read as nothing with one log line (the rest).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../../src/adapters/logger.js';
import { syncDir, writeFileAtomic, type DirSyncOps } from '../../../src/adapters/fs/atomic.js';
import { KeyStore } from '../../../src/agent/gossip/keys.js';
import { MemberSnapshot } from '../../../src/agent/gossip/member-snapshot.js';
import { assignmentsFile, loadAssignments, saveAssignments } from '../../../src/agent/worker/saved.js';
import { containersFile, StandaloneContainers } from '../../../src/agent/worker/containers.js';
import { ManualClock } from '../../../src/core/clock.js';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A logger that records what it was told at warn and error level. */
function recLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log = {
    info: () => undefined, debug: () => undefined,
    warn: (_o: unknown, msg: string) => lines.push(`warn: ${msg}`),
    error: (_o: unknown, msg: string) => lines.push(`error: ${msg}`),
    child: () => log,
  } as unknown as Logger;
  return { log, lines };
}

const temps = (dir: string): string[] => readdirSync(dir).filter((f) => f.includes('.tmp'));

describe('writeFileAtomic', () => {
  test('content and exact mode whatever the umask or the old file\'s mode; no temp file left', () => withDir((dir) => {
    const f = join(dir, 'state.json');
    const old = process.umask(0o077);
    try {
      writeFileAtomic(f, 'public\n', 0o644);
      assert.equal(statSync(f).mode & 0o777, 0o644, 'not narrowed by a umask of 077');
    } finally {
      process.umask(old);
    }
    writeFileSync(f, 'was world-writable');
    chmodSync(f, 0o666);
    writeFileAtomic(f, 'secret\n');
    assert.equal(statSync(f).mode & 0o777, 0o600, 'default 0600, even over a wider file');
    assert.equal(readFileSync(f, 'utf8'), 'secret\n');
    writeFileAtomic(f, new Uint8Array([1, 2, 3]), 0o600);
    assert.deepEqual([...readFileSync(f)], [1, 2, 3], 'bytes as given');
    assert.deepEqual(temps(dir), []);
  }));

  test('a failed write throws and leaves no temp file; what was at the path is intact', () => withDir((dir) => {
    assert.throws(() => writeFileAtomic(join(dir, 'missing-dir', 'f'), 'x'), { code: 'ENOENT' });
    const target = join(dir, 'is-a-dir');
    mkdirSync(join(target, 'child'), { recursive: true });
    assert.throws(() => writeFileAtomic(target, 'x'), { code: 'EISDIR' });
    assert.deepEqual(temps(dir), [], 'the temp file of the failed rename was removed');
    assert.ok(existsSync(join(target, 'child')), 'what was at the path is intact');
  }));

  test('a first write into an empty directory and rewrites: the file with its mode, only it in the directory', () => withDir((dir) => {
    const f = join(dir, 'lb-ingress.json');
    writeFileAtomic(f, '{"node":null,"tasks":{}}', 0o644);
    for (let i = 0; i < 5; i++) writeFileAtomic(f, JSON.stringify({ i }), 0o644);
    assert.deepEqual(readdirSync(dir), ['lb-ingress.json'], 'no temp file, nothing else');
    assert.equal(readFileSync(f, 'utf8'), '{"i":4}');
    assert.equal(statSync(f).mode & 0o777, 0o644);
  }));

  test('a failed write (temp file created and synced, rename refused) removes its temp file, every time', () => withDir((dir) => {
    // The target is a non-empty directory: open, write and fsync of the temp file succeed, the rename fails.
    const target = join(dir, 'busy');
    mkdirSync(join(target, 'child'), { recursive: true });
    for (let i = 0; i < 3; i++) assert.throws(() => writeFileAtomic(target, 'x'.repeat(1900), 0o644), { code: 'EISDIR' });
    assert.deepEqual(readdirSync(dir), ['busy'], 'no temp file left by any of the failed writes');
  }));

  test('a temp file left by a crash breaks nothing: it is never read, reused or removed', () => withDir((dir) => {
    const f = join(dir, 'gossip-keys');
    const leftover = `${f}.tmp-0123456789ab`;
    writeFileSync(leftover, 'half a ke');
    const k = randomBytes(32).toString('base64');
    writeFileAtomic(f, `${k}\n`, 0o600);
    assert.deepEqual(new KeyStore(dir, 'c').exportKeys(), [k], 'the keyring reads its own file only');
    assert.equal(readFileSync(leftover, 'utf8'), 'half a ke', 'another writer\'s temp file is never touched');
  }));
});

describe('syncDir: the directory fsync after the rename', () => {
  test('a real directory: synced; a file system that cannot (procfs: EINVAL) is ignored; a missing directory throws', () => withDir((dir) => {
    syncDir(dir);
    syncDir('/proc'); // fsync(2) of a procfs directory fails with EINVAL on Linux: unsupported, not a risk
    assert.throws(() => syncDir(join(dir, 'gone')), { code: 'ENOENT' });
  }));

  /** Fake calls: `open`/`fsync` fail with the given errno codes; records every call. */
  function ops(fail: { open?: string; fsync?: string }): DirSyncOps & { calls: string[] } {
    const calls: string[] = [];
    const err = (code: string) => Object.assign(new Error(code), { code });
    return {
      calls,
      open: (d) => {
        calls.push(`open ${d}`);
        if (fail.open) throw err(fail.open);
        return 7;
      },
      fsync: (fd) => {
        calls.push(`fsync ${fd}`);
        if (fail.fsync) throw err(fail.fsync);
      },
      close: (fd) => void calls.push(`close ${fd}`),
    };
  }

  test('EINVAL, EISDIR, EPERM (platform or file system cannot) are ignored; the descriptor is always closed', () => {
    const ok = ops({});
    syncDir('/d', ok);
    assert.deepEqual(ok.calls, ['open /d', 'fsync 7', 'close 7']);
    for (const code of ['EINVAL', 'EPERM']) {
      const o = ops({ fsync: code });
      assert.doesNotThrow(() => syncDir('/d', o), code);
      assert.deepEqual(o.calls, ['open /d', 'fsync 7', 'close 7'], code);
    }
    for (const code of ['EISDIR', 'EINVAL', 'EPERM']) {
      const o = ops({ open: code });
      assert.doesNotThrow(() => syncDir('/d', o), code);
      assert.deepEqual(o.calls, ['open /d'], code);
    }
  });

  test('anything else is thrown (EIO: the directory was not written; EACCES, ENOENT on open), the descriptor closed', () => {
    const io = ops({ fsync: 'EIO' });
    assert.throws(() => syncDir('/d', io), { code: 'EIO' });
    assert.deepEqual(io.calls, ['open /d', 'fsync 7', 'close 7']);
    for (const code of ['EACCES', 'ENOENT']) assert.throws(() => syncDir('/d', ops({ open: code })), { code });
  });
});

describe('readers of a file a crash left empty', () => {
  test('the gossip keyring refuses to start, naming the file (loud, never plain text)', () => withDir((dir) => {
    writeFileSync(join(dir, 'gossip-keys'), '');
    assert.throws(() => new KeyStore(dir, 'c'), (e: Error & { code?: string }) => e.code === 'MESHD_BAD_CONFIG' && e.message.includes(join(dir, 'gossip-keys')));
  }));

  test('assignments and standalone containers: read as none, one error line each; the next save replaces the file', () => withDir((dir) => {
    writeFileSync(assignmentsFile(dir), '');
    writeFileSync(containersFile(dir), '');
    const { log, lines } = recLog();
    assert.deepEqual(loadAssignments(dir, log), []);
    const c = new StandaloneContainers(dir, log);
    c.load();
    assert.deepEqual(c.list(), []);
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, /^error: saved assignments unreadable/);
    assert.match(lines[1]!, /^error: saved standalone containers unreadable/);
    saveAssignments(dir, []);
    assert.equal(readFileSync(assignmentsFile(dir), 'utf8'), '[]');
    assert.equal(statSync(assignmentsFile(dir)).mode & 0o777, 0o600, 'task specs carry env values: 0600');
  }));

  test('the gossip member snapshot: read as no members with one warning', () => withDir((dir) => {
    const { log, lines } = recLog();
    const snap = new MemberSnapshot({ dataDir: dir, clock: new ManualClock(0), log, current: () => [{ name: 'n2', addr: '10.0.0.2:7946' }] });
    writeFileSync(snap.file, '');
    assert.deepEqual(snap.load(), []);
    assert.equal(lines.length, 1);
    snap.flush();
    assert.equal(snap.writes, 1, 'replaced on the next write');
    assert.equal(statSync(snap.file).mode & 0o777, 0o644, 'addresses only: readable');
    assert.ok(existsSync(snap.file));
    assert.deepEqual(temps(dir), []);
  }));
});
