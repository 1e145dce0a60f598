/**
 * The gossip edge carries a multi-frame stream message (a push-pull split by the core) on 127.0.0.1:
 * every frame sealed on its own, the "more" bit joining them; a frame over maxStreamBytes or more
 * frames than maxStreamFrames is refused and counted, not buffered.
 */
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { after, test } from 'node:test';
import { GossipTransport, type PacketCipher } from '../../../src/adapters/gossip/transport.js';

const xor: PacketCipher = {
  seal: (b) => Uint8Array.from(b, (x) => x ^ 0x5a),
  open: (b) => ({ ok: true, bytes: Uint8Array.from(b, (x) => x ^ 0x5a) }),
};

const drops: string[] = [];
let got: Uint8Array[] = [];
let port = 0;
let server: GossipTransport | undefined;
let client: GossipTransport | undefined;

/** A transport on a free port: the UDP socket and TCP listener share one number, so try a few (a port in use is the only failure retried). */
async function listen(make: (port: number) => GossipTransport): Promise<{ t: GossipTransport; port: number }> {
  const tried: string[] = [];
  for (let i = 0; i < 20; i++) {
    const p = 20_000 + Math.floor(Math.random() * 40_000);
    const t = make(p);
    try {
      await t.start();
      return { t, port: p };
    } catch (e) {
      await t.stop();
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      tried.push(String(p));
    }
  }
  throw new Error(`no free port among ${tried.join(', ')}`);
}

after(async () => {
  await server?.stop();
  await client?.stop();
});

test('several frames go as one message and come back as one', async () => {
  const s = await listen((p) => new GossipTransport({ bindAddr: '127.0.0.1', port: p, maxStreamBytes: 1024, maxStreamFrames: 4, streamTimeoutMs: 2000, cipher: xor }, {
    packet: () => undefined,
    stream: (_from, frames) => {
      got = frames;
      return frames.map((f) => f.slice().reverse());
    },
    drop: (r) => drops.push(r),
  }));
  server = s.t;
  port = s.port;
  client = (await listen((p) => new GossipTransport({ bindAddr: '127.0.0.1', port: p, maxStreamBytes: 1024, maxStreamFrames: 4, streamTimeoutMs: 2000, cipher: xor }, { packet: () => undefined, stream: () => [], drop: () => undefined }))).t;
  const frames = [new Uint8Array(1000).fill(1), new Uint8Array(10).fill(2), Uint8Array.of(3, 4, 5)];
  const reply = await client!.request(`127.0.0.1:${port}`, frames);
  assert.deepEqual(got, frames);
  assert.deepEqual(reply, frames.map((f) => f.slice().reverse()));
});

test('too many frames, or one too large: refused and counted', async () => {
  const tooMany = await client!.request(`127.0.0.1:${port}`, Array.from({ length: 5 }, () => Uint8Array.of(1)));
  assert.equal(tooMany, null);
  assert.ok(drops.includes('stream-too-many-frames'), drops.join(','));
  const tooBig = await client!.request(`127.0.0.1:${port}`, [Uint8Array.of(1), new Uint8Array(1025)]);
  assert.equal(tooBig, null);
  assert.ok(drops.includes('stream-oversized'), drops.join(','));
  // a peer that lies: the header announces a huge frame with the more bit
  await new Promise<void>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => s.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2])));
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });
  assert.equal(drops.filter((d) => d === 'stream-oversized').length, 2);
});
