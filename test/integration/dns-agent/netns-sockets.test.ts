/**
 * bindInNetns (src/adapters/netns-sockets.ts) for real: the sockets it returns live in the task
 * namespace (a datagram and a connection made inside it reach them), the helper ignores the parent's
 * NODE_OPTIONS, its start-up bound fails loudly and leaves nothing bound, and a bad or missing
 * namespace or a taken port is a clear error. Namespaces `nsk14-*`, removed also on failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { realExec } from '../../../src/adapters/exec.js';
import { bindInNetns, type NetnsSockets } from '../../../src/adapters/netns-sockets.js';
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

/** A client run inside the namespace: one UDP round trip and one TCP round trip to ADDR:port. */
async function probe(port: number): Promise<string> {
  const js = `const d=require('dgram').createSocket('udp4');const t=setTimeout(()=>{console.log('timeout');process.exit(1)},5000);` +
    `d.on('message',(m)=>{d.close();const c=require('net').connect(${port},'${ADDR}',()=>c.write('tcp-ok'));` +
    `c.on('data',(b)=>{console.log(m+' '+b);clearTimeout(t);c.destroy()});c.on('error',(e)=>{console.log(e.message);process.exit(1)})});` +
    `d.send('udp-ok',${port},'${ADDR}')`;
  return (await realExec.check('node', ['-e', js], { netns: NS })).trim();
}

describe('bindInNetns: sockets bound inside a task namespace', () => {
  before(async () => {
    await realExec.run('ip', ['netns', 'del', NS]);
    await realExec.check('ip', ['netns', 'add', NS]);
    await realExec.check('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
  });
  after(async () => {
    await realExec.run('ip', ['netns', 'del', NS]);
  });

  test('UDP and TCP from inside the namespace reach the returned sockets', async () => {
    const s = await bindInNetns(NS, ADDR, 53);
    try {
      assert.deepEqual(s.udp.address(), { address: ADDR, family: 'IPv4', port: 53 });
      echo(s);
      assert.equal(await probe(53), 'udp-ok tcp-ok');
    } finally {
      await close(s);
    }
  });

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

  test('a port already bound in the namespace is a clear error, and the first binding keeps serving', async () => {
    const s = await bindInNetns(NS, ADDR, 5303);
    try {
      echo(s);
      await assert.rejects(bindInNetns(NS, ADDR, 5303), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_EXEC_FAILED' && /cannot bind 127\.0\.0\.11:5303 in .*EADDRINUSE/.test(e.message));
      assert.equal(await probe(5303), 'udp-ok tcp-ok');
    } finally {
      await close(s);
    }
  });

  test('a missing namespace and a name that is not one are clear errors', async () => {
    await assert.rejects(bindInNetns(`${NS}-absent`, ADDR, 53), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_EXEC_FAILED' && /nsenter|No such file/.test(e.message));
    await assert.rejects(bindInNetns('../../proc/1/ns/net', ADDR, 53), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT');
  });
});
