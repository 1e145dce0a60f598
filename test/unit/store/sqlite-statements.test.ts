/**
 * The SQLite store compiles each SQL text once per connection (withStatementCache): a fake connection
 * counts prepare() calls; the real store's behaviour is the store compliance suite's (integration/store).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withStatementCache, type Database, type Statement } from '../../../src/adapters/store/sqlite.js';

test('one compile per SQL text; the same statement object reused; close() closes the connection', () => {
  const compiled: string[] = [];
  let closed = 0;
  const stmt = (sql: string): Statement => ({ get: () => sql, all: () => [], run: () => ({ changes: 0 }), iterate: () => [] });
  const raw: Database = {
    prepare: (sql) => {
      compiled.push(sql);
      return stmt(sql);
    },
    exec: () => undefined, pragma: () => undefined, transaction: (fn) => fn, close: () => void closed++,
  };
  const db = withStatementCache(raw);
  const a = db.prepare('SELECT 1');
  assert.equal(db.prepare('SELECT 1'), a);
  assert.equal(db.prepare('SELECT 2').get(), 'SELECT 2');
  db.prepare('SELECT 1').get();
  assert.deepEqual(compiled, ['SELECT 1', 'SELECT 2']);
  db.close();
  assert.equal(closed, 1);
});
