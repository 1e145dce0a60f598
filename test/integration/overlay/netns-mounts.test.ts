/**
 * Bind and tmpfs mounts on the netns runtime (`--mount` with `--runtime netns`): made in the
 * task's own mount namespace before its program starts, invisible to the host, checked before
 * the start (a missing target is a clear error that leaves nothing behind), volumes refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realExec } from '../../../src/adapters/exec.js';
import { NetnsRuntime } from '../../../src/adapters/runtime/netns.js';
import type { Attachment } from '../../../src/adapters/runtime/types.js';
import { isMeshError } from '../../../src/core/errors.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import { cleanupPrefix, eventually, listNetns } from './lab.js';

const PREFIX = 'mtrm-';
const sandboxNs = `${PREFIX}sb`;
const tmp = mkdtempSync(join(tmpdir(), 'meshd-mtrm-'));
const logDir = join(tmp, 'logs');
const att = (ip: string): Attachment[] => [{ sandboxNs, bridge: 'br0', ip, prefix: 24, gateway: '10.95.0.1', mac: macFromIp(ip), mtu: 1400 }];
const rt = new NetnsRuntime({ prefix: PREFIX, exec: realExec, node: 'node-a', logDir });

async function logOf(id: string): Promise<string> {
  let out = '';
  for await (const c of await rt.logs(id)) out += (c as Buffer).toString();
  return out;
}

before(async () => {
  await cleanupPrefix(PREFIX);
  await realExec.check('ip', ['netns', 'add', sandboxNs]);
  await realExec.check('ip', ['-n', sandboxNs, '-batch', '-'], { input: 'link set lo up\nlink add br0 type bridge\nlink set br0 mtu 1400 up\naddr add 10.95.0.1/24 dev br0\n' });
});
after(async () => {
  await cleanupPrefix(PREFIX);
  rmSync(tmp, { recursive: true, force: true });
});

describe('netns runtime: --mount bind and tmpfs', { timeout: 60_000 }, () => {
  test('a read-only bind and a tmpfs exist at the program\'s first instruction, in its mount namespace only', async () => {
    const src = join(tmp, 'src');
    const bindAt = join(tmp, 'bind-target');
    const tmpfsAt = join(tmp, 'tmpfs-target');
    for (const d of [src, bindAt, tmpfsAt]) mkdirSync(d);
    writeFileSync(join(src, 'hello'), 'hello-bind\n');
    const script = [
      `cat ${bindAt}/hello`,
      `(echo x > ${bindAt}/w) 2>/dev/null && echo bind-writable || echo bind-read-only`,
      `stat -f -c %T ${tmpfsAt}`,
      `echo y > ${tmpfsAt}/y && cat ${tmpfsAt}/y`,
      'pwd',
      'echo done',
    ].join('; ');
    await rt.start({
      id: 'mnt1', name: 'm.1', argv: ['sh', '-c', script],
      container: { workdir: tmpfsAt, mounts: [{ type: 'bind', source: src, target: bindAt, readOnly: true }, { type: 'tmpfs', target: tmpfsAt, tmpfsMode: 0o1777 }] },
    }, att('10.95.0.11'));
    let log = '';
    assert.ok(await eventually(async () => (log = await logOf('mnt1')).includes('done\n'), 10_000), `the task ran to its end: ${JSON.stringify(log)}`);
    assert.equal(log, `hello-bind\nbind-read-only\ntmpfs\ny\n${tmpfsAt}\ndone\n`);
    assert.deepEqual(readdirSync(bindAt), [], 'the host\'s target directory is untouched (the mount was private to the task)');
    assert.deepEqual(readdirSync(tmpfsAt), [], 'the tmpfs was the task\'s own');
    await rt.stop('mnt1', 1000);
  });

  test('a target missing on the node: a clear error before anything starts, nothing left behind; a volume: unsupported', async () => {
    await assert.rejects(
      rt.start({ id: 'mnt2', name: 'm.2', argv: ['true'], container: { mounts: [{ type: 'tmpfs', target: join(tmp, 'absent') }] } }, att('10.95.0.12')),
      (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT' && /does not exist on this node/.test(e.message),
    );
    await assert.rejects(
      rt.start({ id: 'mnt3', name: 'm.3', argv: ['true'], container: { mounts: [{ type: 'volume', source: 'v', target: tmp }] } }, att('10.95.0.13')),
      (e: unknown) => isMeshError(e) && e.code === 'MESHD_UNSUPPORTED' && /netns runtime/.test(e.message),
    );
    assert.deepEqual((await listNetns()).filter((n) => n.startsWith(`${PREFIX}t-`)), []);
  });
});
