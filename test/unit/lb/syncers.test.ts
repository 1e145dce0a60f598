/**
 * The per-namespace syncer pool of the dataplanes: a namespace's sync state lives from its first
 * apply until `forget`; asking for a full resync of a namespace never applied creates nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryDataplane } from '../../../src/adapters/dataplane/memory.js';
import { NftablesDataplane } from '../../../src/adapters/dataplane/nftables.js';
import type { Exec } from '../../../src/adapters/exec.js';
import { base } from './fixtures.js';

test('forget drops a namespace; requestFullResync of an unknown one creates nothing; forgotten → next apply full', async () => {
  const dp = new MemoryDataplane();
  dp.requestFullResync({ netns: 'ns-x' });
  assert.equal(dp.syncedNamespaces(), 0);
  assert.equal((await dp.apply(base(), { netns: 'ns-a' })).mode, 'full');
  assert.equal((await dp.apply(base(), { netns: 'ns-a' })).mode, 'noop');
  await dp.apply(base(), { netns: 'ns-b' });
  assert.equal(dp.syncedNamespaces(), 2);
  dp.forget({ netns: 'ns-a' });
  assert.equal(dp.syncedNamespaces(), 1);
  assert.deepEqual((await dp.readKernel({ netns: 'ns-a' })).frontends, [], 'the simulated kernel of a forgotten namespace is gone too');
  assert.equal((await dp.apply(base(), { netns: 'ns-a' })).mode, 'full');
});

test('the kernel dataplanes forget too (nftables, recording exec)', async () => {
  const calls: string[] = [];
  const exec = { check: async (cmd: string, args: string[]) => { calls.push([cmd, ...args].join(' ')); return ''; }, run: async () => ({ code: 0, stdout: '', stderr: '' }) } as unknown as Exec;
  const dp = new NftablesDataplane(exec);
  assert.equal((await dp.apply(base(), { netns: 'ns-a' })).mode, 'full');
  assert.equal(dp.syncedNamespaces(), 1);
  dp.forget({ netns: 'ns-a' });
  assert.equal(dp.syncedNamespaces(), 0);
  assert.equal((await dp.apply(base(), { netns: 'ns-a' })).mode, 'full', 'a forgotten namespace starts with a full resync');
});
