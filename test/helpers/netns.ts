/**
 * A scratch network namespace for the tests of one suite (real nft, ip): made afresh before them (one left by a
 * crashed run is deleted first) and deleted after them, whether they passed or not. Call it inside the
 * `describe` (or at the top of the file): it registers that suite's before/after hooks.
 */
import { after, before } from 'node:test';
import { realExec } from '../../src/adapters/exec.js';

export function scratchNetns(name: string): void {
  before(async () => {
    await realExec.run('ip', ['netns', 'del', name]);
    await realExec.check('ip', ['netns', 'add', name]);
  });
  after(async () => {
    await realExec.run('ip', ['netns', 'del', name]);
  });
}
