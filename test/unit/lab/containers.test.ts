/**
 * The lab's Docker side (src/lab/containers.ts): per-node config merge, which engines `lab down`
 * asks, which containers are the lab's (by the runtime's meshd.prefix label), and that a failed
 * removal is an error rather than a silent leftover.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkNodeConfig, DEFAULT_ENGINE_SOCKET, engineSockets, labContainerIds, labsOfContainers, mergeAgentConfig, removeLabContainers } from '../../../src/lab/containers.js';
import { MeshError } from '../../../src/core/errors.js';
import type { Exec, ExecResult } from '../../../src/adapters/exec.js';

describe('mergeAgentConfig', () => {
  test('sections merge key by key; other values replace', () => {
    const base = { dns: { workers: 1 }, docker: { sandboxImage: 'sb:1', socketPath: '/a.sock' }, logLevel: 'info' };
    const out = mergeAgentConfig(base, { docker: { socketPath: '/b.sock' }, logLevel: 'debug', lb: { dataplane: 'nftables' } });
    assert.deepEqual(out, { dns: { workers: 1 }, docker: { sandboxImage: 'sb:1', socketPath: '/b.sock' }, logLevel: 'debug', lb: { dataplane: 'nftables' } });
    assert.deepEqual(base.docker, { sandboxImage: 'sb:1', socketPath: '/a.sock' }, 'base untouched');
  });
  test('an array or scalar over a section replaces it', () => {
    assert.deepEqual(mergeAgentConfig({ x: { a: 1 } }, { x: [1] }), { x: [1] });
    assert.deepEqual(mergeAgentConfig({ x: [1] }, { x: { a: 1 } }), { x: { a: 1 } });
  });
});

describe('checkNodeConfig', () => {
  test('accepts nodes of the lab; absent is fine', () => {
    checkNodeConfig(undefined, ['n1']);
    checkNodeConfig({ n2: { docker: {} } }, ['n1', 'n2']);
  });
  for (const [what, cfg] of [['unknown node', { n4: {} }], ['not an object', { n1: 'x' }], ['an array', { n1: [] }], ['null', { n1: null }]] as const) {
    test(`refuses ${what} with a stable code`, () => {
      assert.throws(() => checkNodeConfig(cfg as Record<string, unknown>, ['n1', 'n2', 'n3']), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
    });
  }
});

test('engineSockets: the default engine always, then each node\'s own, once', () => {
  assert.deepEqual(engineSockets([]), [DEFAULT_ENGINE_SOCKET]);
  assert.deepEqual(engineSockets([{}, { docker: { socketPath: '/x/n2.sock' } }, { docker: { socketPath: '/x/n2.sock' } }, { docker: { socketPath: DEFAULT_ENGINE_SOCKET } }, { docker: 'bad' }]),
    [DEFAULT_ENGINE_SOCKET, '/x/n2.sock']);
});

test('labContainerIds: by the meshd.prefix label of this lab only (not a lab whose name starts the same)', () => {
  const out = ['aaa mlab-web-n1-', 'bbb mlab-web-n3-', 'ccc mlab-webx-n1-', 'ddd meshd-', 'eee', '', '  fff mlab-web-n2-  '].join('\n');
  assert.deepEqual(labContainerIds(out, 'web'), ['aaa', 'bbb', 'fff']);
  assert.deepEqual(labContainerIds(out, 'we'), []);
});

test('labsOfContainers: labs named by container prefixes (lab down --all after the namespaces are gone)', () => {
  assert.deepEqual(labsOfContainers('aaa mlab-web-n1-\nbbb mlab-web-n3-\nccc mlab-x1-n1-\nddd meshd-\neee\nfff mlab--n1-\n'), ['web', 'x1']);
});

/** An Exec that answers `docker ... ps` with `ps` per socket and records the rest. */
function fakeDocker(ps: Record<string, ExecResult>, rm: ExecResult = { code: 0, stdout: '', stderr: '' }): Exec & { calls: string[][] } {
  const calls: string[][] = [];
  const run = async (cmd: string, args: readonly string[]): Promise<ExecResult> => {
    calls.push([cmd, ...args]);
    const sock = args[1]!.replace('unix://', '');
    if (args[2] === 'ps') return ps[sock] ?? { code: 1, stdout: '', stderr: 'Cannot connect to the Docker daemon' };
    return rm;
  };
  return { calls, run, check: async (c, a) => (await run(c, a)).stdout };
}

describe('removeLabContainers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-labct-'));
  const a = join(dir, 'a.sock');
  const b = join(dir, 'b.sock');
  writeFileSync(a, '');
  writeFileSync(b, '');
  after(() => rmSync(dir, { recursive: true, force: true }));
  test('removes the lab\'s containers from every engine that answers; skips absent or silent engines', async () => {
    const ex = fakeDocker({ [a]: { code: 0, stdout: 'c1 mlab-lab-n1-\nc2 mlab-other-n1-\n', stderr: '' }, [b]: { code: 0, stdout: 'c3 mlab-lab-n3-\n', stderr: '' } });
    const n = await removeLabContainers(ex, 'lab', [a, b, join(dir, 'absent.sock')]);
    assert.equal(n, 2);
    assert.deepEqual(ex.calls.filter((c) => c.includes('rm')), [
      ['docker', '-H', `unix://${a}`, 'rm', '-f', '-v', 'c1'],
      ['docker', '-H', `unix://${b}`, 'rm', '-f', '-v', 'c3'],
    ]);
    const ex2 = fakeDocker({}); // socket file exists, engine does not answer
    assert.equal(await removeLabContainers(ex2, 'lab', [a]), 0);
    assert.equal(ex2.calls.length, 1);
  });
  test('a removal the engine refuses is an error naming the engine', async () => {
    const ex = fakeDocker({ [a]: { code: 0, stdout: 'c1 mlab-lab-n1-\n', stderr: '' } }, { code: 1, stdout: '', stderr: 'device or resource busy' });
    await assert.rejects(removeLabContainers(ex, 'lab', [a]), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_EXEC_FAILED' && e.message.includes(a) && e.message.includes('busy'));
  });
});
