/**
 * SQLite store: the compliance suite, durability across reopen, and refusal to start on
 * a corrupt or truncated file (never a silent fresh store).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MeshError } from '../../../src/core/errors.js';
import { SqliteStore } from '../../../src/adapters/store/sqlite.js';
import { storeCompliance } from '../../compliance/store.js';

const dir = mkdtempSync(join(tmpdir(), 'meshd-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(dir, `s${n++}`, 'state.db');

storeCompliance('sqlite', () => Promise.resolve(SqliteStore.open({ path: fresh() })));

function corruptErr(reason?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof MeshError, String(e));
    assert.equal(e.code, 'MESHD_STORE_CORRUPT');
    assert.match(e.message, /refusing to start/);
    if (reason) assert.match(String(e.details?.reason), reason);
    return true;
  };
}

async function populated(): Promise<string> {
  const path = fresh();
  const s = SqliteStore.open({ path });
  for (let i = 0; i < 200; i++) await s.put(`tasks/t${i}`, { id: `t${i}`, image: 'whoami', marker: `VALUE-${i}-${'x'.repeat(100)}` });
  await s.put('cluster/marker', 'MARKER-abcdefghijklmnop');
  await s.close();
  return path;
}

describe('sqlite store durability and corruption', () => {
  test('state survives close and reopen; file is 0600', async () => {
    const path = await populated();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const s = SqliteStore.open({ path });
    assert.equal((await s.list('tasks/')).length, 200);
    assert.equal((await s.get('cluster/marker'))!.value, 'MARKER-abcdefghijklmnop');
    const rev = await s.revision();
    assert.equal(rev, 201);
    assert.ok((await s.put('nodes/x', 1)) > rev);
    await s.close();
  });

  test('truncated file (half, one page, zero bytes) → MESHD_STORE_CORRUPT', async () => {
    for (const cut of [(size: number) => Math.floor(size / 2), () => 4096, () => 0, () => 100]) {
      const path = await populated();
      const size = cut(statSync(path).size);
      truncateSync(path, size);
      assert.throws(() => SqliteStore.open({ path }), corruptErr());
      assert.equal(statSync(path).size, size, 'the file is left as it was, not recreated');
    }
  });

  test('garbled header → MESHD_STORE_CORRUPT', async () => {
    const path = await populated();
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from('GARBAGEGARBAGE!!'), 0, 16, 0);
    closeSync(fd);
    assert.throws(() => SqliteStore.open({ path }), corruptErr(/header/));
  });

  test('garbled pages in the middle → MESHD_STORE_CORRUPT', async () => {
    const path = await populated();
    const size = statSync(path).size;
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.alloc(8192, 0xa5), 0, 8192, Math.floor(size / 2 / 4096) * 4096);
    closeSync(fd);
    assert.throws(() => SqliteStore.open({ path }), corruptErr());
  });

  test('one byte changed inside a stored value → checksum mismatch → MESHD_STORE_CORRUPT', async () => {
    const path = await populated();
    const buf = readFileSync(path);
    const at = buf.indexOf('MARKER-abcdefghijklmnop');
    assert.ok(at > 0);
    buf[at + 10] = 'Z'.charCodeAt(0);
    writeFileSync(path, buf);
    assert.throws(() => SqliteStore.open({ path }), corruptErr(/checksum/));
  });

  test('a foreign SQLite file (no meshd schema) → MESHD_STORE_CORRUPT', async () => {
    const path = fresh();
    const s = SqliteStore.open({ path });
    await s.close();
    // Rewrite the schema as a foreign database would have it.
    const { createRequire } = await import('node:module');
    const Db = createRequire(import.meta.url)('better-sqlite3') as new (p: string) => { exec(s: string): void; close(): void };
    const db = new Db(path);
    db.exec('DROP TABLE kv; CREATE TABLE other (x); ');
    db.close();
    assert.throws(() => SqliteStore.open({ path }), corruptErr(/schema/));
  });
});
