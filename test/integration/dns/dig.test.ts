/**
 * A real client (dig) against the server on 127.0.0.1:<ephemeral>: truncated UDP answers come whole over
 * TCP, PTR works, AAAA of a known name is NODATA, and a table change is visible on the very next query.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { realExec } from '../../../src/adapters/exec.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { UDP_PATHS } from './paths.js';
import { DnsServer } from '../../../src/adapters/dns-server/server.js';
import { askTcp } from './stub.js';
import { buildQuery } from '../../unit/dns/helpers.js';

for (const udpPath of UDP_PATHS) describe(`dns server with dig (udp ${udpPath})`, () => {
  const registry = new DnsRegistry();
  registry.upsertService({ name: 'web', network: 'default', mode: 'vip', vip: '10.9.0.2', aliases: ['www'] }, 0);
  registry.upsertService({ name: 'big', network: 'default', mode: 'dnsrr' }, 0);
  for (let i = 1; i <= 100; i++) registry.upsertTask({ name: `big.${i}.t${i}`, service: 'big', network: 'default', ip: `10.9.1.${i}`, healthy: true, owner: 'n1', slot: i, ports: [{ proto: 'tcp', port: 80 }] }, 0);
  const server = new DnsServer({ udp: udpPath, registry, listen: [{ address: '127.0.0.1', port: 0 }], upstreams: [], ttlSec: 7 });
  let port = 0;
  const dig = async (...args: string[]): Promise<string> => (await realExec.run('dig', ['@127.0.0.1', '-p', String(port), '+time=2', '+tries=1', ...args], { timeoutMs: 10_000 })).stdout;
  before(async () => {
    [{ port }] = (await server.start()) as [{ port: number; address: string }];
  });
  after(async () => {
    await server.close();
  });

  test('A, alias, TTL, case', async () => {
    assert.deepEqual(server.udpReport().sockets, { native: udpPath === 'native' ? 1 : 0, js: udpPath === 'js' ? 1 : 0 });
    assert.equal((await dig('+short', 'WEB')).trim(), '10.9.0.2');
    assert.equal((await dig('+short', 'www.default.')).trim(), '10.9.0.2');
    const full = await dig('+noall', '+answer', 'web');
    assert.match(full, /^web\.\s+7\s+IN\s+A\s+10\.9\.0\.2$/m);
  });

  test('UDP answer too big: TC set with whole records; dig +tcp and dig’s own TCP retry get all 100', async () => {
    const udp = await dig('+ignore', '+noedns', 'tasks.big');
    assert.match(udp, /flags: qr aa tc rd ra;/);
    const n = Number(/ANSWER: (\d+)/.exec(udp)![1]);
    assert.ok(n > 0 && n < 100, String(n));
    assert.ok(Number(/MSG SIZE\s+rcvd: (\d+)/.exec(udp)![1]) <= 512);
    const tcp = await dig('+tcp', '+short', 'tasks.big');
    assert.equal(tcp.trim().split('\n').length, 100);
    const retried = await dig('+noedns', '+short', 'tasks.big');
    assert.equal(retried.trim().split('\n').length, 100);
    const edns = await dig('+bufsize=1232', '+ignore', 'tasks.big');
    assert.match(edns, /udp: 1232/);
    assert.ok(Number(/MSG SIZE\s+rcvd: (\d+)/.exec(edns)![1]) <= 1232);
  });

  test('PTR for VIP and task IP; AAAA → NOERROR without answers', async () => {
    assert.equal((await dig('+short', '-x', '10.9.0.2')).trim(), 'web.default.');
    assert.equal((await dig('+short', '-x', '10.9.1.42')).trim(), 'big.42.t42.default.');
    const aaaa = await dig('AAAA', 'web');
    assert.match(aaaa, /status: NOERROR/);
    assert.match(aaaa, /ANSWER: 0,/);
  });

  test('SRV (issue 19): dig parses it; UDP truncates whole records, TCP carries all 100 with their targets; slot names', async () => {
    const udp = await dig('+noedns', '+ignore', '_80._tcp.big', 'SRV');
    assert.match(udp, /flags: qr aa tc rd ra;/);
    const tcp = await dig('+tcp', '+noall', '+answer', '+additional', '_http._tcp.big', 'SRV');
    const srv = tcp.split('\n').filter((l) => /\sIN\s+SRV\s/.test(l));
    const a = tcp.split('\n').filter((l) => /\sIN\s+A\s/.test(l));
    assert.equal(srv.length, 100);
    assert.match(srv[0]!, /^_http\._tcp\.big\.\s+7\s+IN\s+SRV\s+0 1 80 big\.1\.t1\.default\.$/);
    assert.equal(a.length, 100);
    assert.match(a.join('\n'), /^big\.42\.t42\.default\.\s+7\s+IN\s+A\s+10\.9\.1\.42$/m);
    assert.equal((await dig('+short', '42.big')).trim(), '10.9.1.42');
    assert.match(await dig('101.big'), /status: NXDOMAIN/);
  });

  test('a scale change drops the cached answer at once (UDP and TCP)', async () => {
    assert.equal((await dig('+short', 'tasks.big')).trim().split('\n').length, 100);
    for (let i = 2; i <= 100; i++) registry.removeTask('default', `big.${i}.t${i}`);
    assert.equal((await dig('+short', 'tasks.big')).trim(), '10.9.1.1');
    assert.equal((await dig('+tcp', '+short', 'big')).trim(), '10.9.1.1');
    registry.upsertTask({ name: 'big.1.t1', service: 'big', network: 'default', ip: '10.9.1.1', healthy: false, owner: 'n1' }, 1);
    assert.match(await dig('tasks.big'), /status: NOERROR[\s\S]*ANSWER: 0,/);
  });

  test('TCP: one query, then several pipelined on one connection (frames split across writes)', async () => {
    const r = await askTcp(port, buildQuery({ id: 5, name: ['web'] }));
    assert.equal(r.readUInt16BE(0), 5);
    const frames = Buffer.concat([1, 2, 3].map((id) => {
      const q = buildQuery({ id, name: ['web'] });
      return Buffer.concat([Buffer.from([0, q.length]), q]);
    }));
    const ids = await new Promise<number[]>((resolve, reject) => {
      const c = connect({ host: '127.0.0.1', port });
      let buf = Buffer.alloc(0);
      const got: number[] = [];
      c.on('error', reject);
      c.on('connect', () => {
        c.write(frames.subarray(0, 7));
        setTimeout(() => c.write(frames.subarray(7)), 20);
      });
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(buf.readUInt16BE(2));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        if (got.length === 3) {
          c.destroy();
          resolve(got);
        }
      });
    });
    assert.deepEqual(ids.sort(), [1, 2, 3]);
  });
});
