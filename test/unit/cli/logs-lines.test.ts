/** `netctl service logs`: tail parsing, docker-style task prefixes, whole-line splitting, task lookup. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { LinePrefixer, findLogTask, logsQuery, paddedLabels, parseTail, serviceLogTasks, taskLabel, type LogTask } from '../../../src/cli/logs-lines.js';

const code = (f: () => unknown, c: string, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof MeshError && e.code === c && re.test(e.message));

test('--tail: whole numbers ≥ 0 or all; negative, NaN, fractions and junk are MESHD_BAD_ARGUMENT', () => {
  assert.equal(parseTail(undefined), undefined);
  assert.equal(parseTail('all'), undefined);
  assert.equal(parseTail('0'), 0);
  assert.equal(parseTail('25'), 25);
  for (const bad of ['-1', 'NaN', '1.5', '', 'ten', '1e3', '99999999', '0x10']) code(() => parseTail(bad), 'MESHD_BAD_ARGUMENT', /^--tail must be a whole number of lines \(0 or more\) or "all", got /);
});

test('task label: service.slot.<12-char id>@node, padded to a common width', () => {
  const a = { id: 'abcdefghijklmnopqrstuvwxy', name: 'web.1.abcdefghijklmnopqrstuvwxy', node: 'n2' };
  const b = { id: 'zzzzzzzzzzzzzzzzzzzzzzzzz', name: 'web.10.zzzzzzzzzzzzzzzzzzzzzzzzz', node: 'n10' };
  assert.equal(taskLabel(a), 'web.1.abcdefghijkl@n2');
  assert.equal(taskLabel({ ...a, node: null }), 'web.1.abcdefghijkl@?');
  const l = paddedLabels([a, b]);
  assert.equal(l.get(a.id), 'web.1.abcdefghijkl@n2   | ');
  assert.equal(l.get(b.id), 'web.10.zzzzzzzzzzzz@n10 | ');
});

test('lines: only whole lines are prefixed; split lines, split UTF-8 characters, CRLF and a last unterminated line', () => {
  const p = new LinePrefixer('t@n1 | ');
  assert.equal(p.push('hel'), '');
  assert.equal(p.push('lo\nwor'), 't@n1 | hello\n');
  assert.equal(p.push(Buffer.from('ld\r\nsecond\nthird\n')), 't@n1 | world\nt@n1 | second\nt@n1 | third\n');
  const euro = Buffer.from('€\n');
  assert.equal(p.push(euro.subarray(0, 1)), '');
  assert.equal(p.push(euro.subarray(1)), 't@n1 | €\n');
  assert.equal(p.push('\n'), 't@n1 | \n', 'an empty line stays a line');
  assert.equal(p.push('tail without newline'), '');
  assert.equal(p.end(), 't@n1 | tail without newline\n');
  assert.equal(p.end(), '');
});

const t = (id: string, name: string, desiredState = 'running', node: string | null = 'n1'): LogTask => ({ id, name: `${name}.${id}`, node, desiredState, state: desiredState === 'running' ? 'running' : 'shutdown' });

test('service: only current tasks with a node', () => {
  const list = [t('a1111', 'web.1'), t('b2222', 'web.1', 'shutdown'), t('c3333', 'web.2', 'running', null), t('d4444', 'web.3')];
  assert.deepEqual(serviceLogTasks(list).map((x) => x.id), ['a1111', 'd4444']);
});

test('task argument: id, full name, slot name (the current task), unique id prefix; unknown → null; ambiguous → error', () => {
  const list = [t('a1111', 'web.1'), t('a2222', 'web.1', 'shutdown'), t('b3333', 'api.1', 'shutdown'), t('b3334', 'api.1', 'shutdown')];
  assert.equal(findLogTask(list, 'a2222')?.id, 'a2222');
  assert.equal(findLogTask(list, 'web.1.a2222')?.id, 'a2222');
  assert.equal(findLogTask(list, 'web.1')?.id, 'a1111', 'the current task of the slot');
  assert.equal(findLogTask(list, 'api.1')?.id, 'b3333', 'no current task: the newest listed');
  assert.equal(findLogTask(list, 'a111')?.id, 'a1111');
  assert.equal(findLogTask(list, 'nosuch'), null);
  assert.equal(findLogTask(list, 'a1'), null, 'prefixes under 4 characters are not ids');
  code(() => findLogTask(list, 'b333'), 'MESHD_BAD_ARGUMENT', /task prefix b333 is ambiguous: b3333, b3334/);
});

test('query string of the agent route', () => {
  assert.equal(logsQuery({ follow: false, timestamps: false }), '');
  assert.equal(logsQuery({ follow: true, tail: 0, timestamps: true }), '?follow=1&tail=0&timestamps=1');
});
