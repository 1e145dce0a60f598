/**
 * Sends seeded malformed gossip datagrams to a live agent (run inside a lab namespace:
 * `ip netns exec mlab-L-client node fuzz-sender.js IP:PORT COUNT SEED [KEYFILE]`).
 * Every case is malformed by construction — never a well-formed message — so a correct agent
 * must drop and count them all and its membership must not change. With a key file, half of
 * the cases are sealed with the right key (so they reach the parser behind the decryption)
 * and some have a flipped GCM tag.
 */
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { seededRng } from '../../../src/core/clock.js';
import { encode, MAX_INCARNATION, WIRE_VERSION, T } from '../../../src/core/gossip/wire.js';
import { loadSealer } from './sealer.js';

const [target, countRaw, seedRaw, keyFile] = process.argv.slice(2);
if (!target || !countRaw) {
  console.error('usage: fuzz-sender IP:PORT COUNT SEED [KEYFILE]');
  process.exit(2);
}
const count = Number(countRaw);
const rng = seededRng(Number(seedRaw ?? 1));
const int = (n: number) => Math.floor(rng() * n);
const rand = (n: number) => {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(256);
  return b;
};
const seal = keyFile ? loadSealer(readFileSync(keyFile)) : undefined;

const samples = [
  encode({ type: 'ping', seq: 7, target: 'n1', source: 'n2', sourceAddr: '10.99.1.2:7946' }),
  encode({ type: 'alive', incarnation: 3, node: 'n2', addr: '10.99.1.2:7946' }),
  encode({ type: 'dead', incarnation: 3, node: 'n3', from: 'n4', left: false }),
  encode({ type: 'suspect', incarnation: 3, node: 'n3', from: 'n4' }),
  encode({ type: 'table', network: 'net', table: 't', key: 'k', value: new Uint8Array([1, 2, 3]), ltime: 5, owner: 'n2', deleted: false }),
  encode({ type: 'compound', parts: [encode({ type: 'ack', seq: 1 }), encode({ type: 'alive', incarnation: 1, node: 'n5', addr: '10.99.1.5:7946' })] }),
];

/** One malformed case; the label says which family it belongs to. */
function makeCase(i: number): [string, Uint8Array] {
  const base = samples[i % samples.length]!;
  switch (i % 8) {
    case 0:
      return ['empty', new Uint8Array(0)];
    case 1: {
      const b = rand(1 + int(1400));
      if (b.length > 0 && b[0] === WIRE_VERSION) b[0] = WIRE_VERSION + 1 + int(200);
      return ['random', b];
    }
    case 2:
      return ['truncated', base.slice(0, Math.max(2, int(base.length - 1)))];
    case 3: {
      const b = base.slice();
      b[0] = (WIRE_VERSION + 1 + int(250)) & 0xff || 2;
      return ['wrong-version', b];
    }
    case 4: {
      // lying length: the first length-prefixed field after the header claims far more than is there
      const b = base.slice();
      const at = base[1] === T.compound ? 3 : base[1] === T.ping ? 6 : 6;
      if (at < b.length) b[at] = 0xff;
      return ['lying-length', b.slice(0, Math.min(b.length, at + 8))];
    }
    case 5:
      return ['oversized', rand(9000 + int(50_000))];
    case 6: {
      // maximum incarnation: above the largest legal value, about a real member
      const bad = encode({ type: 'alive', incarnation: MAX_INCARNATION, node: 'n2', addr: '10.99.1.2:7946' });
      new DataView(bad.buffer, bad.byteOffset).setUint32(2, 0xffffffff);
      return ['max-incarnation', bad];
    }
    default: {
      const b = base.slice();
      b[1] = 100 + int(150);
      return ['bad-type', b];
    }
  }
}

const sock = createSocket('udp4');
const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
const families: Record<string, number> = {};
/** Sends the kernel refused (by error code): not sent, so not counted in `sent`. */
const failed: Record<string, number> = {};
let sent = 0;
async function main(): Promise<void> {
  for (let i = 0; i < count; i++) {
    const [label, plain] = makeCase(i);
    let out = plain;
    if (seal && i % 2 === 0) {
      out = seal(plain);
      if (i % 10 === 0) {
        out = out.slice();
        out[out.length - 1]! ^= 0x01; // flipped tag
      }
    }
    families[label] = (families[label] ?? 0) + 1;
    if (out.length > 65_000) out = out.slice(0, 65_000);
    const err = await new Promise<NodeJS.ErrnoException | null>((r) => sock.send(out, port, host, (e) => r(e)));
    if (err) failed[err.code ?? err.message] = (failed[err.code ?? err.message] ?? 0) + 1;
    else sent++;
    if (i % 200 === 0) await new Promise((r) => setTimeout(r, 5)); // let the receiver breathe; this is fuzz, not a flood
  }
  sock.close();
  console.log(JSON.stringify({ sent, failed, families }));
}
void main();
