/**
 * Shared runtime compliance suite (js-libp2p style): every Runtime (netns now, docker
 * later) must pass it. It builds its own sandbox namespace with a bridge (no VXLAN: the
 * overlay is tested elsewhere) and checks start/list/exec/stop semantics and plumbing.
 *
 * Usage in a *.test.ts file:
 *   runtimeCompliance('netns', async (prefix) => ({ runtime: new NetnsRuntime({ prefix, exec: realExec, node: 'n1' }) }));
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realExec } from '../../../src/adapters/exec.js';
import type { Attachment, Runtime } from '../../../src/adapters/runtime/types.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import { isMeshError } from '../../../src/core/errors.js';
import { cleanupPrefix, eventually, listNetns } from './lab.js';

export interface RuntimeUnderTest {
  runtime: Runtime;
  cleanup?: () => Promise<void>;
}

export interface ComplianceOptions {
  /** argv that fetches a URL and prints the body (runs inside a task). Default curl. */
  httpGet?: (url: string) => string[];
  /** argv of a task that ignores SIGTERM (to prove the SIGKILL escalation). */
  stubbornArgv?: string[];
  /** Node name the runtime was given (whoami's `node:` line). */
  node: string;
}

export function runtimeCompliance(name: string, prefix: string, factory: (prefix: string) => Promise<RuntimeUnderTest>, opts: ComplianceOptions): void {
  const httpGet = opts.httpGet ?? ((url: string) => ['curl', '-s', '-m', '2', url]);
  const stubborn = opts.stubbornArgv ?? ['sh', '-c', 'trap "" TERM; while :; do sleep 0.2; done'];
  const sandboxNs = `${prefix}sb`;
  const att = (ip: string): Attachment => ({ sandboxNs, bridge: 'br0', ip, prefix: 24, gateway: '10.93.0.1', mac: macFromIp(ip), mtu: 1400 });

  describe(`runtime compliance: ${name}`, { timeout: 60_000 }, () => {
    let rut: RuntimeUnderTest;
    let rt: Runtime;

    before(async () => {
      await cleanupPrefix(prefix);
      await realExec.check('ip', ['netns', 'add', sandboxNs]);
      await realExec.check('ip', ['-n', sandboxNs, '-batch', '-'], {
        input: 'link set lo up\nlink add br0 type bridge\nlink set br0 mtu 1400 up\naddr add 10.93.0.1/24 dev br0\n',
      });
      rut = await factory(prefix);
      rt = rut.runtime;
    });

    after(async () => {
      if (rut?.cleanup) await rut.cleanup();
      await cleanupPrefix(prefix);
    });

    test('start whoami tasks: listed, running, plumbed (address, MAC, MTU, default route), reachable', async () => {
      const t1 = await rt.start({ id: 'rc1', name: 'svc.1', builtin: 'whoami' }, att('10.93.0.11'));
      const t2 = await rt.start({ id: 'rc2', name: 'svc.2', builtin: 'whoami', env: { EXTRA: 'x' } }, att('10.93.0.12'));
      assert.equal(t1.running, true);
      assert.equal(t2.ip, '10.93.0.12');
      const list = await rt.list();
      assert.deepEqual(list.filter((t) => t.id.startsWith('rc')).map((t) => [t.id, t.ip, t.running]), [['rc1', '10.93.0.11', true], ['rc2', '10.93.0.12', true]]);
      // Portable checks (iproute2 or busybox inside the task).
      assert.equal((await rt.exec('rc1', ['cat', '/sys/class/net/eth0/mtu'])).stdout.trim(), '1400');
      assert.equal((await rt.exec('rc1', ['cat', '/sys/class/net/eth0/address'])).stdout.trim(), macFromIp('10.93.0.11'));
      assert.match((await rt.exec('rc1', ['ip', '-4', 'addr', 'show', 'dev', 'eth0'])).stdout, /inet 10\.93\.0\.11\/24/);
      assert.match((await rt.exec('rc1', ['ip', 'route'])).stdout, /default via 10\.93\.0\.1 dev eth0/);
      assert.equal((await rt.exec('rc1', ['ping', '-c', '1', '-W', '1', '10.93.0.1'])).code, 0, 'gateway answers');
      assert.ok(await eventually(async () => (await rt.exec('rc1', httpGet('http://10.93.0.12/'))).code === 0, 5000), 'whoami rc2 listening');
      const body = (await rt.exec('rc1', httpGet('http://10.93.0.12/'))).stdout;
      assert.equal(body, `task: svc.2\nip: 10.93.0.12\nnode: ${opts.node}\n`);
    });

    test('exec returns exit code and output; unknown task → NOT_FOUND', async () => {
      const r = await rt.exec('rc1', ['sh', '-c', 'echo hi; exit 3']);
      assert.equal(r.code, 3);
      assert.equal(r.stdout, 'hi\n');
      await assert.rejects(rt.exec('nope', ['true']), (e: unknown) => isMeshError(e) && e.code === 'MESHD_NOT_FOUND');
    });

    test('duplicate task id and bad specs are refused without leaving anything behind', async () => {
      await assert.rejects(rt.start({ id: 'rc1', name: 'dup', builtin: 'whoami' }, att('10.93.0.13')), /already exists/);
      await assert.rejects(rt.start({ id: 'rc9', name: 'x' }, att('10.93.0.19')), /exactly one of argv or builtin/);
      await assert.rejects(rt.start({ id: 'bad id', name: 'x', builtin: 'whoami' }, att('10.93.0.19')), /invalid task id/);
      await assert.rejects(rt.start({ id: 'rc8', name: 'x', builtin: 'whoami' }, { ...att('10.93.0.18'), sandboxNs: `${prefix}missing` }));
      assert.equal((await listNetns()).some((n) => n.endsWith('rc8') || n.endsWith('rc9')), false);
      assert.equal((await rt.list()).some((t) => t.id === 'rc8'), false);
    });

    test('stop: SIGTERM first; namespace, veth and process gone; idempotent', async () => {
      const pid = (await rt.list()).find((t) => t.id === 'rc2')?.pid;
      const t0 = Date.now();
      await rt.stop('rc2', 5000);
      assert.ok(Date.now() - t0 < 3000, 'whoami exits on SIGTERM without waiting for the grace period');
      assert.equal((await rt.list()).some((t) => t.id === 'rc2'), false);
      if (pid) assert.throws(() => process.kill(pid, 0));
      const links = await realExec.check('ip', ['-n', sandboxNs, '-br', 'link']);
      assert.doesNotMatch(links, /vt-rc2/);
      await rt.stop('rc2', 100);
    });

    test('stop escalates to SIGKILL after the grace period', async () => {
      await rt.start({ id: 'rc3', name: 'stubborn', argv: stubborn }, att('10.93.0.13'));
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      await rt.stop('rc3', 300);
      const took = Date.now() - t0;
      assert.ok(took >= 280 && took < 4000, `took ${took} ms`);
      assert.equal((await rt.list()).some((t) => t.id === 'rc3'), false);
    });

    test('a new runtime instance (agent restart) still lists and stops running tasks', async () => {
      const fresh = (await factory(prefix)).runtime;
      const l = await fresh.list();
      assert.ok(l.some((t) => t.id === 'rc1' && t.running && t.ip === '10.93.0.11'), JSON.stringify(l));
      await fresh.stop('rc1', 2000);
      assert.equal((await rt.list()).some((t) => t.id === 'rc1'), false);
    });
  });
}
