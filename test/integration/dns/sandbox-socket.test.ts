/**
 * A sandbox's 127.0.0.11:53 socket as the agent gets it — bound inside a task namespace by the binder
 * helper and passed over IPC (bindInNetns) — served by DnsServer.attachSandbox on both UDP paths: dig and a
 * burst of 200 queries sent at once from inside the namespace are answered for the sandbox's networks; on
 * detach no copy of the socket stays open (the native path polls a dup of its fd): the same port binds
 * again in the namespace. Namespace `h18dns-<pid>`, removed also on failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realExec } from '../../../src/adapters/exec.js';
import { bindInNetns } from '../../../src/adapters/netns-sockets.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { DnsServer, type SandboxTag } from '../../../src/adapters/dns-server/server.js';
import { UDP_PATHS } from './paths.js';

const NS = `h18dns-${process.pid}`;
const ADDR = '127.0.0.11';

/** Sends `n` A queries for `name` at once from inside NS; prints how many replies carried `ip`. */
async function burst(port: number, name: string, n: number, ip: string): Promise<string> {
  const js = `const d=require('dgram').createSocket({type:'udp4',recvBufferSize:1<<22});let ok=0,got=0;` +
    `const t=setTimeout(()=>{console.log('replies '+got+' ok '+ok+' (timeout)');process.exit(0)},5000);` +
    `d.on('message',(m)=>{got++;if(m.length>=16&&m.subarray(m.length-4).join('.')==='${ip}')ok++;if(got===${n}){console.log('replies '+got+' ok '+ok);clearTimeout(t);d.close()}});` +
    `d.bind(0,()=>{for(let i=0;i<${n};i++){const q=Buffer.concat([Buffer.from([i>>8,i&255,1,0,0,1,0,0,0,0,0,0]),...'${name}'.split('.').map((l)=>Buffer.concat([Buffer.from([l.length]),Buffer.from(l)])),Buffer.from([0,0,1,0,1])]);d.send(q,${port},'${ADDR}')}})`;
  return (await realExec.check('node', ['-e', js], { netns: NS, timeoutMs: 30_000 })).trim();
}

for (const udpPath of UDP_PATHS) describe(`sandbox socket from the namespace binder (udp ${udpPath})`, () => {
  const registry = new DnsRegistry();
  registry.upsertService({ name: 'web', network: 'default', mode: 'vip', vip: '10.9.0.2' }, 0);
  registry.upsertService({ name: 'api', network: 'other', mode: 'vip', vip: '10.8.0.2' }, 0);
  const server = new DnsServer({ udp: udpPath, registry, listen: [], upstreams: [] });
  before(async () => {
    await realExec.run('ip', ['netns', 'del', NS]);
    await realExec.check('ip', ['netns', 'add', NS]);
    await realExec.check('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    await server.start();
  });
  after(async () => {
    await server.close();
    await realExec.run('ip', ['netns', 'del', NS]);
  });

  test('answers for the sandbox networks, a burst in full; detach leaves the port free', async () => {
    const tag: SandboxTag = { networks: ['other'] };
    const detach = server.attachSandbox(await bindInNetns(NS, ADDR, 53), tag);
    try {
      assert.deepEqual(server.udpReport().sockets, { native: udpPath === 'native' ? 1 : 0, js: udpPath === 'js' ? 1 : 0 });
      const dig = await realExec.check('dig', [`@${ADDR}`, '+short', '+time=2', '+tries=1', 'api'], { netns: NS });
      assert.equal(dig.trim(), '10.8.0.2');
      assert.equal(await burst(53, 'api', 200, '10.8.0.2'), 'replies 200 ok 200');
      assert.equal(server.stats().queries.udp, 201);
    } finally {
      await detach();
    }
    // No copy of the socket is left open anywhere: the same address and port bind again in the namespace.
    const again = await bindInNetns(NS, ADDR, 53);
    again.udp.close();
    await new Promise<void>((r) => again.tcp.close(() => r()));
  });
});
