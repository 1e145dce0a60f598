/** `--allow-from` flags (issue #19) and `network create --default-deny` → spec / API body. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { allowFromCreate, allowFromUpdate, parseAllowList } from '../../../src/cli/policy-flags.js';
import { networkCreateBody } from '../../../src/cli/network-flags.js';
import { isMeshError } from '../../../src/core/errors.js';

describe('allow-from flags', () => {
  test('comma lists, repeatable, deduplicated; absent = open', () => {
    assert.deepEqual(allowFromCreate({ allowFrom: ['client,api', 'api', ' db '] }), { allowFrom: ['client', 'api', 'db'] });
    assert.deepEqual(allowFromCreate({}), {});
    assert.deepEqual(allowFromCreate({ allowFrom: [''] }), { allowFrom: [] });
    assert.deepEqual(allowFromCreate({ allowFrom: ['*'] }), {});
  });
  test('* cannot be mixed with names', () => {
    assert.throws(() => parseAllowList(['a,*'], '--allow-from'), (e) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT');
    assert.throws(() => allowFromUpdate(['a'], { allowFromAdd: ['*'] }), (e) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT');
  });
  test('update: keep, replace, add, rm, open again', () => {
    assert.deepEqual(allowFromUpdate(['a'], {}), ['a']);
    assert.equal(allowFromUpdate(undefined, {}), undefined);
    assert.deepEqual(allowFromUpdate(['a'], { allowFrom: ['b,c'] }), ['b', 'c']);
    assert.deepEqual(allowFromUpdate(['a'], { allowFromAdd: ['b'], allowFromRm: ['a'] }), ['b']);
    assert.equal(allowFromUpdate(['a'], { allowFrom: ['*'] }), undefined);
    assert.deepEqual(allowFromUpdate(['a'], { allowFromRm: ['a'] }), []);
  });
  test('network create --default-deny', () => {
    assert.equal(networkCreateBody('app', { driver: 'overlay', defaultDeny: true }).defaultDeny, true);
    assert.equal('defaultDeny' in networkCreateBody('app', { driver: 'overlay' }), false);
  });
});
