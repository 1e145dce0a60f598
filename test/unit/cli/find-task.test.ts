/** `netctl exec TASK`: which task a key names (id, full name, short name, id prefix). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { findTask } from '../../../src/cli/worker-commands.js';

type Row = Parameters<typeof findTask>[0][number];
const row = (id: string, name: string, state = 'running'): Row => ({
  id, name: `${name}.${id}`, service: name.split('.')[0]!, runtime: 'netns', state, ips: {}, netns: `ns-${id}`, container: null, pid: 1, error: null,
});
const rows = [row('aaaa1111', 'web.1'), row('aaaa2222', 'web.2'), row('bbbb3333', 'web.2', 'stopped'), row('cccc4444', 'api.1', 'stopped')];
const code = (f: () => unknown, c: string, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof MeshError && e.code === c && re.test(e.message));

test('id, full name, short name (the live one of a slot), unique id prefix', () => {
  assert.equal(findTask(rows, 'aaaa1111').id, 'aaaa1111');
  assert.equal(findTask(rows, 'web.1.aaaa1111').id, 'aaaa1111');
  assert.equal(findTask(rows, 'web.1').id, 'aaaa1111');
  assert.equal(findTask(rows, 'web.2').id, 'aaaa2222', 'the running task, not the stopped one of the same slot');
  assert.equal(findTask(rows, 'api.1').id, 'cccc4444', 'only a stopped one: that one (exec then says it is stopped)');
  assert.equal(findTask(rows, 'bbbb').id, 'bbbb3333');
});

test('unknown or ambiguous keys', () => {
  code(() => findTask(rows, 'nosuch'), 'MESHD_NOT_FOUND', /^no task nosuch on this node \(see: netctl task ls\)$/);
  code(() => findTask(rows, 'aaaa'), 'MESHD_BAD_ARGUMENT', /task prefix aaaa is ambiguous/);
  code(() => findTask(rows, 'web'), 'MESHD_NOT_FOUND', /no task web/);
  code(() => findTask([row('x1', 'db.1'), row('x2', 'db.1')], 'db.1'), 'MESHD_BAD_ARGUMENT', /task name db\.1 is ambiguous/);
});
