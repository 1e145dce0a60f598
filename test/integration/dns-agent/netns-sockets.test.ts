/**
 * bindInNetns (src/adapters/netns-sockets.ts) for real, in both implementations — the helper process
 * and the native addon's setns path (bindInNetnsNative; the addon is built by native-scripts/setup.sh,
 * and a missing one fails these tests rather than testing the helper twice): the sockets returned live
 * in the task namespace (a datagram and a connection made inside it reach them), a bad or missing
 * namespace or a taken port is a clear error and leaves nothing bound. Helper only: it ignores the
 * parent's NODE_OPTIONS, its start-up bound fails loudly. Native only: the agent's own sockets stay in
 * its namespace afterwards. Namespaces `nsk14-*`, removed also on failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { realExec } from '../../../src/adapters/exec.js';
import { createSocket } from 'node:dgram';
import { bindInNetns, bindInNetnsNative, type NetnsSockets } from '../../../src/adapters/netns-sockets.js';
import { loadNativeUdp } from '../../../src/adapters/dns-server/native-udp.js';
import { MeshError } from '../../../src/core/errors.js';

const NS = `nsk14-${process.pid}`;
const ADDR = '127.0.0.11';

/** Echo on both sockets: what a client inside the namespace sends comes back. */
function echo(s: NetnsSockets): void {
  s.udp.on('message', (m, r) => s.udp.send(m, r.port, r.address));
  s.tcp.on('connection', (c) => c.pipe(c));
}

async function close(s: NetnsSockets): Promise<void> {
  s.udp.close();
  s.tcp.close();
  await once(s.tcp, 'close');
}

/**
 * A client run inside the namespace: one UDP round trip and one TCP round trip to ADDR:port. The UDP
 * socket is connected, as dig's and glibc's are: a reply that leaves from another address than ADDR
 * never reaches it (a sandbox socket bound while lo was down answered from 127.0.0.1: dig timed out).
 */
async function probe(port: number, ns = NS): Promise<string> {
  const js = `const d=require('dgram').createSocket('udp4');const t=setTimeout(()=>{console.log('timeout');process.exit(1)},5000);` +
    `d.on('message',(m)=>{d.close();const c=require('net').connect(${port},'${ADDR}',()=>c.write('tcp-ok'));` +
    `c.on('data',(b)=>{console.log(m+' '+b);clearTimeout(t);c.destroy()});c.on('error',(e)=>{console.log(e.message);process.exit(1)})});` +
    `d.connect(${port},'${ADDR}',()=>d.send('udp-ok'))`;
  return (await realExec.check('node', ['-e', js], { netns: ns })).trim();
}

/** The native bind of the addon setup built; its absence is a failure (see the file comment). */
function nativeBind(): NonNullable<ReturnType<typeof loadNativeUdp>['addon']>['bindInNetns'] & {} {
  const l = loadNativeUdp();
  if (!l.addon) throw new Error(`native addon unavailable: ${l.reason}`);
  if (!l.addon.bindInNetns) throw new Error('native addon has no bindInNetns (built before native/meshd_netns.c: run native-scripts/setup.sh)');
  return l.addon.bindInNetns;
}

const IMPLS = {
  helper: (ns: string, addr: string, port: number) => bindInNetns(ns, addr, port),
  native: (ns: string, addr: string, port: number) => bindInNetnsNative(nativeBind(), ns, addr, port),
} as const;

before(async () => {
  await realExec.run('ip', ['netns', 'del', NS]);
  await realExec.check('ip', ['netns', 'add', NS]);
  await realExec.check('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
});
after(async () => {
  await realExec.run('ip', ['netns', 'del', NS]);
});

for (const [impl, bind] of Object.entries(IMPLS)) {
  describe(`bindInNetns (${impl}): sockets bound inside a task namespace`, () => {
    const base = impl === 'helper' ? 5300 : 5400;
    test('UDP and TCP from inside the namespace reach the returned sockets', async () => {
      const s = await bind(NS, ADDR, 53);
      try {
        assert.deepEqual(s.udp.address(), { address: ADDR, family: 'IPv4', port: 53 });
        echo(s);
        assert.equal(await probe(53), 'udp-ok tcp-ok');
      } finally {
        await close(s);
      }
    });

    test('a port already bound in the namespace is a clear error, and the first binding keeps serving', async () => {
      const s = await bind(NS, ADDR, base + 3);
      try {
        echo(s);
        await assert.rejects(bind(NS, ADDR, base + 3), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_EXEC_FAILED' && new RegExp(`cannot bind 127\\.0\\.0\\.11:${base + 3} in .*(EADDRINUSE|Address already in use)`).test(e.message));
        assert.equal(await probe(base + 3), 'udp-ok tcp-ok');
      } finally {
        await close(s);
      }
      // nothing of the failed attempt stayed bound: the port binds again once the first is closed
      await close(await bind(NS, ADDR, base + 3));
    });

    test('a namespace whose lo was never up is refused until lo is up (a socket bound there would answer from 127.0.0.1)', async () => {
      // With lo never up the namespace has no local routing table; the kernel then takes 127.0.0.11 for a
      // broadcast address and the bind succeeds without a source address: replies leave from 127.0.0.1
      // and connected clients drop them. The agent's own `ip link set lo up` can fail that way when it runs
      // before `ip netns add` has mounted the namespace file (seen: one task's DNS timed out for a whole run).
      const ns = `${NS}-${impl}-lo`;
      await realExec.run('ip', ['netns', 'del', ns]);
      await realExec.check('ip', ['netns', 'add', ns]);
      try {
        const early = await bind(ns, ADDR, 53).then((sockets) => sockets, (e: unknown) => e);
        if (!(early instanceof Error)) {
          await close(early as NetnsSockets); // a socket left open would keep this test's process alive
          assert.fail('127.0.0.11 was bound in a namespace whose lo was never up');
        }
        assert.ok(early instanceof MeshError && early.code === 'MESHD_EXEC_FAILED' && /lo not up yet/.test(early.message), String(early));
        await realExec.check('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
        const s = await bind(ns, ADDR, 53);
        try {
          echo(s);
          assert.equal(await probe(53, ns), 'udp-ok tcp-ok');
        } finally {
          await close(s);
        }
      } finally {
        await realExec.run('ip', ['netns', 'del', ns]);
      }
    });

    test('a missing namespace and a name that is not one are clear errors', async () => {
      await assert.rejects(bind(`${NS}-absent`, ADDR, 53), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_EXEC_FAILED' && /nsenter|No such file/.test(e.message));
      await assert.rejects(bind('../../proc/1/ns/net', ADDR, 53), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
    });
  });
}

describe('bindInNetns (native): the agent stays in its own namespace', () => {
  test('after a bind in the task namespace, a new socket of this process binds in the root namespace again', async () => {
    const s = await IMPLS.native(NS, ADDR, 5410);
    await close(s);
    // 127.0.0.11:5410 is free in this namespace, and the socket is really here: a client here reaches it.
    const here = createSocket('udp4');
    await new Promise<void>((r) => here.bind(0, '127.0.0.1', r));
    const port = (here.address() as { port: number }).port;
    const got = new Promise<string>((r) => here.once('message', (m) => r(String(m))));
    const c = createSocket('udp4');
    c.send('root-ns', port, '127.0.0.1');
    assert.equal(await got, 'root-ns');
    c.close();
    here.close();
    // and the task namespace's 127.0.0.11 is unreachable from here (its lo is not ours)
    const nsLinks = (await realExec.check('ip', ['-n', NS, '-o', 'link'])).split('\n').filter(Boolean).length;
    const ourLinks = (await realExec.check('ip', ['-o', 'link'])).split('\n').filter(Boolean).length;
    assert.notEqual(nsLinks, ourLinks, 'this process sees its own links, not the task namespace\'s');
  });
});

describe('bindInNetns (helper): process details', () => {
  test("the helper does not inherit the parent's NODE_OPTIONS (a preload that would fail is ignored)", async () => {
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = '--require=/nonexistent/meshd-preload.cjs';
    try {
      await close(await bindInNetns(NS, ADDR, 5301));
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
  });

  test('a helper that does not start within the start-up bound fails loudly and leaves nothing bound', async () => {
    await assert.rejects(bindInNetns(NS, ADDR, 5302, 10_000, 1), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_EXEC_FAILED' && /did not start/.test(e.message));
    // the killed helper held no socket: the same address binds at once
    const s = await bindInNetns(NS, ADDR, 5302);
    await close(s);
  });
});
