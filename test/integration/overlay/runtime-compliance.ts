/**
 * Shared runtime compliance suite (js-libp2p style): every Runtime (netns, docker) must pass
 * it. It builds its own two sandbox namespaces with a bridge each (two networks; no VXLAN: the
 * overlay is tested elsewhere) and checks start/list/exec/stop semantics, plumbing of several
 * networks, that the network is complete before the process starts, exit events and logs.
 *
 * Usage in a *.test.ts file:
 *   runtimeCompliance('netns', async (prefix) => ({ runtime: new NetnsRuntime({ prefix, exec: realExec, node: 'n1' }) }));
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realExec } from '../../../src/adapters/exec.js';
import type { DockerRuntime } from '../../../src/adapters/runtime/docker.js';
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

async function collect(s: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const c of s) out += c.toString();
  return out;
}

export function runtimeCompliance(name: string, prefix: string, factory: (prefix: string) => Promise<RuntimeUnderTest>, opts: ComplianceOptions): void {
  const httpGet = opts.httpGet ?? ((url: string) => ['curl', '-s', '-m', '2', url]);
  const stubborn = opts.stubbornArgv ?? ['sh', '-c', 'trap "" TERM; while :; do sleep 0.2; done'];
  const sandboxNs = `${prefix}sb`;
  const sandboxNs2 = `${prefix}sb2`;
  const att = (ip: string): Attachment[] => [{ sandboxNs, bridge: 'br0', ip, prefix: 24, gateway: '10.93.0.1', mac: macFromIp(ip), mtu: 1400 }];
  const att2 = (ip: string): Attachment => ({ sandboxNs: sandboxNs2, bridge: 'br0', ip, prefix: 24, gateway: '10.94.0.1', mac: macFromIp(ip), mtu: 1350 });

  describe(`runtime compliance: ${name}`, { timeout: 60_000 }, () => {
    let rut: RuntimeUnderTest;
    let rt: Runtime;

    before(async () => {
      await cleanupPrefix(prefix);
      await realExec.check('ip', ['netns', 'add', sandboxNs]);
      await realExec.check('ip', ['-n', sandboxNs, '-batch', '-'], {
        input: 'link set lo up\nlink add br0 type bridge\nlink set br0 mtu 1400 up\naddr add 10.93.0.1/24 dev br0\n',
      });
      await realExec.check('ip', ['netns', 'add', sandboxNs2]);
      await realExec.check('ip', ['-n', sandboxNs2, '-batch', '-'], {
        input: 'link set lo up\nlink add br0 type bridge\nlink set br0 mtu 1350 up\naddr add 10.94.0.1/24 dev br0\n',
      });
      rut = await factory(prefix);
      rt = rut.runtime;
    });

    after(async () => {
      await rt?.close?.();
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
      assert.equal((await rt.exec('rc1', ['sh', '-c', 'echo err >&2; cat'], { input: 'from stdin\n' })).stdout, 'from stdin\n', 'stdin input');
      assert.equal((await rt.exec('rc1', ['sh', '-c', 'echo err >&2'])).stderr, 'err\n');
      await assert.rejects(rt.exec('nope', ['true']), (e: unknown) => isMeshError(e) && e.code === 'MESHD_NOT_FOUND');
    });

    test('duplicate task id and bad specs are refused without leaving anything behind', async () => {
      await assert.rejects(rt.start({ id: 'rc1', name: 'dup', builtin: 'whoami' }, att('10.93.0.13')), /already exists/);
      await assert.rejects(rt.start({ id: 'rc9', name: 'x' }, att('10.93.0.19')), /exactly one of argv or builtin/);
      await assert.rejects(rt.start({ id: 'bad id', name: 'x', builtin: 'whoami' }, att('10.93.0.19')), /invalid task id/);
      await assert.rejects(rt.start({ id: 'rc8', name: 'x', builtin: 'whoami' }, [{ ...att('10.93.0.18')[0]!, sandboxNs: `${prefix}missing` }]));
      await assert.rejects(rt.start({ id: 'rc7', name: 'x', builtin: 'whoami' }, []), /no network attachment/);
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

    test('a task on two networks gets eth0 and eth1, each with its address, MTU and subnet route', async () => {
      await rt.start({ id: 'rm1', name: 'multi.1', builtin: 'whoami' }, [...att('10.93.0.21'), att2('10.94.0.21')]);
      try {
        const a = (await rt.exec('rm1', ['ip', '-4', '-o', 'addr'])).stdout;
        assert.match(a, /eth0\s+inet 10\.93\.0\.21\/24/);
        assert.match(a, /eth1\s+inet 10\.94\.0\.21\/24/);
        assert.equal((await rt.exec('rm1', ['cat', '/sys/class/net/eth1/mtu'])).stdout.trim(), '1350');
        assert.equal((await rt.exec('rm1', ['cat', '/sys/class/net/eth1/address'])).stdout.trim(), macFromIp('10.94.0.21'));
        const routes = (await rt.exec('rm1', ['ip', 'route'])).stdout;
        assert.match(routes, /default via 10\.93\.0\.1 dev eth0/);
        assert.match(routes, /10\.94\.0\.0\/24 dev eth1/);
        assert.equal((await rt.exec('rm1', ['ping', '-c', '1', '-W', '1', '10.94.0.1'])).code, 0, 'second network gateway answers');
        assert.equal((await rt.exec('rc1', ['ping', '-c', '1', '-W', '1', '10.93.0.21'])).code, 0, 'reachable on the first network');
      } finally {
        await rt.stop('rm1', 2000);
      }
      assert.doesNotMatch(await realExec.check('ip', ['-n', sandboxNs2, '-br', 'link']), /vt-rm1/);
    });

    test('the network is complete before the process starts: 20 starts of `cat /etc/resolv.conf` all see 127.0.0.11', async () => {
      assert.ok(rt.logs && rt.onExit, 'runtime has logs() and onExit()');
      const exits = new Map<string, number | null>();
      const off = rt.onExit((id, code) => exits.set(id, code));
      const startMs: number[] = [];
      try {
        for (let i = 0; i < 20; i++) {
          const id = `rr${i}`;
          let plumbed = '';
          const t0 = Date.now();
          await rt.start({ id, name: `resolv.${i}`, argv: ['cat', '/etc/resolv.conf'] }, att(`10.93.0.${100 + i}`), {
            beforeApp: async (ns) => {
              plumbed = (await realExec.check('ip', ['-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).trim();
            },
          });
          startMs.push(Date.now() - t0);
          assert.match(plumbed, new RegExp(`inet 10\\.93\\.0\\.${100 + i}/24`), 'eth0 plumbed before the app started');
          assert.ok(await eventually(async () => exits.has(id), 5000), `exit of ${id} reported`);
          assert.equal(exits.get(id), 0, `${id} exit code`);
          const out = await collect(await rt.logs(id, {}));
          assert.match(out, /^nameserver 127\.0\.0\.11$/m, `${id} output: ${JSON.stringify(out)}`);
          await rt.stop(id, 1000);
        }
      } finally {
        off();
      }
      const sorted = [...startMs].sort((a, b) => a - b);
      console.log(`# ${name}: start() of a task: median ${sorted[10]} ms, max ${sorted[19]} ms over 20`);
    });

    test('a killed task is reported through onExit within 2 s', async () => {
      assert.ok(rt.onExit);
      await rt.start({ id: 'rk1', name: 'killme', builtin: 'whoami' }, att('10.93.0.31'));
      let got: { at: number; code: number | null } | null = null;
      const off = rt.onExit((id, code) => {
        if (id === 'rk1') got = { at: Date.now(), code };
      });
      try {
        const d = rt as DockerRuntime;
        if (rt.kind === 'docker') await d.eventsOpened();
        const t0 = Date.now();
        if (rt.kind === 'docker') await d.docker.getContainer(d.container('rk1')).kill(); // what `docker kill` does
        else process.kill((await rt.list()).find((t) => t.id === 'rk1')!.pid!, 'SIGKILL');
        assert.ok(await eventually(async () => got !== null, 2000), 'exit reported within 2 s');
        const g = got as unknown as { at: number; code: number | null };
        console.log(`# ${name}: kill → onExit ${g.at - t0} ms (exit code ${g.code})`);
        assert.equal((await rt.list()).find((t) => t.id === 'rk1')?.running ?? false, false);
      } finally {
        off();
        await rt.stop('rk1', 1000);
      }
    });

    test('a missing image → MESHD_IMAGE_NOT_FOUND naming image and node, nothing left behind', { skip: false }, async (t) => {
      if (rt.kind !== 'docker') {
        t.skip('the netns runtime runs host programs, not images');
        return;
      }
      await assert.rejects(rt.start({ id: 'ri1', name: 'x', argv: [], image: 'mtov-nope:404' }, att('10.93.0.41')), (e: unknown) => {
        assert.ok(isMeshError(e) && e.code === 'MESHD_IMAGE_NOT_FOUND', String(e));
        assert.equal(e.message, `image mtov-nope:404 not present on node ${opts.node}`);
        assert.match(e.message, /^image (\S+) not present on node (\S+)$/);
        return true;
      });
      assert.equal((await rt.list()).some((x) => x.id === 'ri1'), false);
      assert.equal((await listNetns()).some((n) => n.endsWith('t-ri1')), false);
    });

    test('stop removes the process (docker: app and sandbox containers) and the namespace', async () => {
      await rt.start({ id: 'rs1', name: 'stopme', builtin: 'whoami' }, att('10.93.0.51'));
      assert.ok((await listNetns()).some((n) => n.endsWith('t-rs1')));
      await rt.stop('rs1', 2000);
      assert.equal((await listNetns()).some((n) => n.endsWith('t-rs1')), false);
      assert.equal((await rt.list()).some((x) => x.id === 'rs1'), false);
      if (rt.kind === 'docker') {
        const d = rt as DockerRuntime;
        const left = await d.docker.listContainers({ all: true, filters: { label: ['meshd.task=rs1'] } });
        assert.deepEqual(left.map((c) => c.Names), []);
      }
      await rt.stop('rs1', 100); // idempotent
    });

    test('a new runtime instance (agent restart) still lists and stops running tasks', async () => {
      const fresh = (await factory(prefix)).runtime;
      after(() => fresh.close?.());
      const l = await fresh.list();
      assert.ok(l.some((t) => t.id === 'rc1' && t.running && t.ip === '10.93.0.11'), JSON.stringify(l));
      await fresh.stop('rc1', 2000);
      assert.equal((await rt.list()).some((t) => t.id === 'rc1'), false);
    });
  });
}
