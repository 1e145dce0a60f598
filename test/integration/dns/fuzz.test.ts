/**
 * 10⁵ malformed queries (issue 6 acceptance, ARCHITECTURE §4 case 14): most go straight into the packet
 * handler, a representative 5 000 through real UDP to a server on 127.0.0.1:<ephemeral> (loopback of the
 * root namespace only). Each must be dropped or answered FORMERR / NOTIMP / BADVERS as its kind requires —
 * never a crash or a hang — and the server must keep answering valid queries during the run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import DNS from 'dns2';
import { seededRng } from '../../../src/core/clock.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { RCODE } from '../../../src/core/dns/wire.js';
import { UDP_PATHS } from './paths.js';
import { DnsServer } from '../../../src/adapters/dns-server/server.js';
import { buildQuery } from '../../unit/dns/helpers.js';
import { fuzzCase, type Expect } from './fuzzgen.js';

const TOTAL = 100_000;
const VIA_UDP = 5_000;
const RCODE_OF: Record<Exclude<Expect, 'drop' | 'any'>, number> = { formerr: RCODE.FORMERR, notimp: RCODE.NOTIMP, badvers: RCODE.BADVERS };

function check(kind: string, expect: Expect, reply: Buffer | undefined): void {
  if (expect === 'drop') {
    assert.equal(reply, undefined, `${kind}: expected a drop`);
    return;
  }
  if (expect === 'any') {
    if (reply === undefined) return;
    assert.ok(reply.length >= 12 && (reply[2]! & 0x80) !== 0, `${kind}: reply is not a response`);
    return;
  }
  assert.ok(reply, `${kind}: expected a reply`);
  const rcode = (reply[3]! & 0x0f) | (reply.length >= 12 + 11 && reply.readUInt16BE(10) === 1 ? reply[12 + 5]! << 4 : 0);
  assert.equal(rcode, RCODE_OF[expect], `${kind}: rcode`);
}

for (const udpPath of UDP_PATHS) describe(`dns fuzz: 10^5 malformed queries (udp ${udpPath})`, () => {
  const registry = new DnsRegistry();
  registry.upsertService({ name: 'web', network: 'default', mode: 'vip', vip: '10.9.0.2' }, 0);
  const server = new DnsServer({ udp: udpPath, registry, listen: [{ address: '127.0.0.1', port: 0 }], upstreams: [] });
  let port = 0;
  let client: Socket;
  before(async () => {
    [{ port }] = (await server.start()) as [{ port: number; address: string }];
    // The client shares this process's event loop with the server and reads only when the test loop
    // yields (every 50 sends): give it room for a whole burst of replies. The default 208 KiB holds ~34
    // loopback replies, and the native path answers a burst of 51 in one wakeup (dgram: 32 per wakeup).
    client = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
  });
  after(async () => {
    client?.close();
    await server.close();
  });

  test('direct into the handler and through real UDP; valid queries keep answering', { timeout: 120_000 }, async () => {
    const rng = seededRng(0xd25);
    const byKind = new Map<string, number>();
    // UDP path: replies are matched by arrival order per kind-free check ('any' tolerant), so track pending valid probes by ID.
    const probeIds = new Map<number, number>();
    let probesAnswered = 0;
    let udpReplies = 0;
    let badReplies = 0;
    client.on('message', (msg) => {
      udpReplies++;
      if (msg.length < 12 || (msg[2]! & 0x80) === 0) badReplies++;
      if (msg.length >= 12 && probeIds.has(msg.readUInt16BE(0)) && (msg[3]! & 0xf) === 0) {
        const p = Packet.parse(msg);
        if ((p.answers[0] as unknown as { address?: string } | undefined)?.address === '10.9.0.2') {
          probeIds.delete(msg.readUInt16BE(0));
          probesAnswered++;
        }
      }
    });
    const send = (b: Buffer) => new Promise<void>((r, j) => client.send(b, port, '127.0.0.1', (e) => (e ? j(e) : r())));
    let probes = 0;
    const udpEvery = Math.floor(TOTAL / VIA_UDP);
    for (let i = 0; i < TOTAL; i++) {
      const c = fuzzCase(rng);
      byKind.set(c.kind, (byKind.get(c.kind) ?? 0) + 1);
      if (i % udpEvery === 0) {
        await send(c.buf);
        if (i % (udpEvery * 50) === 0) {
          const id = 0x8000 + (probes++ & 0x7fff);
          probeIds.set(id, i);
          await send(buildQuery({ id, name: ['web'] }));
          await new Promise((r) => setImmediate(r));
        }
        continue;
      }
      let reply: Buffer | undefined;
      let calls = 0;
      const willReply = server.handler.handle(c.buf, '127.0.0.1', 40000, i % 7 === 0 ? 'tcp' : 'udp', (b) => {
        calls++;
        reply = Buffer.from(b);
      });
      assert.ok(calls <= 1);
      assert.equal(willReply, calls === 1, `${c.kind}: handle() return value`);
      check(c.kind, c.expect, reply);
    }
    // Final probes after the storm, then wait for every probe answer.
    for (let k = 0; k < 10; k++) {
      const id = 0x8000 + (probes++ & 0x7fff);
      probeIds.set(id, -1);
      await send(buildQuery({ id, name: ['web'] }));
    }
    const deadline = Date.now() + 5000;
    while (probeIds.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(probeIds.size, 0, `unanswered valid probes: ${probeIds.size}`);
    assert.equal(probesAnswered, probes);
    assert.equal(byKind.size, 15, 'every fuzz kind generated');
    assert.equal(server.udpReport().sockets[udpPath], 1, `served by the ${udpPath} path`);
    const s = server.stats();
    assert.ok(udpReplies > 0);
    assert.equal(badReplies, 0, 'every UDP reply is a DNS response');
    assert.equal(s.queries.udp + s.queries.tcp >= TOTAL, true);
    assert.ok((s.answers.FORMERR ?? 0) > 30_000, JSON.stringify(s.answers));
    assert.ok((s.drops['short-header'] ?? 0) > 0 && (s.drops['qr-set'] ?? 0) > 0);
    assert.ok((s.answers.NOTIMP ?? 0) > 0 && (s.answers.BADVERS ?? 0) > 0);
  });
});

const { Packet } = DNS;
