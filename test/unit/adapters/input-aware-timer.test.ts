/**
 * InputAwareTimer (src/adapters/clock.ts): a deadline that expired while the event loop was busy is judged only
 * after the datagrams that had already arrived are read. Real loopback UDP sockets, a real busy turn.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { test } from 'node:test';
import { InputAwareTimer } from '../../../src/adapters/clock.js';

function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  return new Promise((resolve) => s.bind(0, '127.0.0.1', () => resolve(s)));
}

/** Busy for `ms` without yielding: the stall a GC pause or a big merge makes. */
function stall(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
}

/**
 * Arms a 5 ms deadline, sends a datagram that arrives at once, stalls 40 ms, and returns the order in which the
 * deadline and the datagram were handled.
 */
async function race(arm: (fn: () => void) => void): Promise<string[]> {
  const [a, b] = await Promise.all([bound(), bound()]);
  const order: string[] = [];
  try {
    const done = new Promise<void>((resolve) => {
      let left = 2;
      const one = (what: string) => {
        order.push(what);
        if (--left === 0) resolve();
      };
      b.on('message', () => one('datagram'));
      arm(() => one('deadline'));
    });
    a.send(Buffer.from('ack'), b.address().port, '127.0.0.1');
    stall(40);
    await done;
  } finally {
    a.close();
    b.close();
  }
  return order;
}

test('the hazard: a plain timer that expired during a stall runs before the datagram that arrived in time', async () => {
  for (let i = 0; i < 3; i++) assert.deepEqual(await race((fn) => setTimeout(fn, 5)), ['deadline', 'datagram']);
});

test('InputAwareTimer: the expired deadline runs after the datagram that was already waiting', async () => {
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await race((fn) => new InputAwareTimer(fn).arm(5)), ['datagram', 'deadline']);
  }
});

test('InputAwareTimer: input handled while the deadline is due re-arms for later without postponing it', async () => {
  const [a, b] = await Promise.all([bound(), bound()]);
  try {
    let runs = 0;
    const t = new InputAwareTimer(() => runs++);
    const handled = new Promise<number>((resolve) => b.on('message', () => {
      // What every datagram's pump does: re-arm for the core's next deadline. The due run must still happen now.
      t.arm(10_000);
      resolve(runs);
    }));
    t.arm(1);
    a.send(Buffer.from('x'), b.address().port, '127.0.0.1');
    stall(20);
    assert.equal(await handled, 0, 'the datagram was read before the due deadline ran');
    await new Promise((r) => setImmediate(r));
    assert.equal(runs, 1, 'the re-arm did not push the due deadline 10 s back');
    t.cancel();
  } finally {
    a.close();
    b.close();
  }
});

test('InputAwareTimer: re-arm replaces a pending timeout; cancel stops both stages', async () => {
  let runs = 0;
  const t = new InputAwareTimer(() => runs++);
  t.arm(5);
  t.arm(30);
  await new Promise((r) => setTimeout(r, 15));
  assert.equal(runs, 0, 'the first arm was replaced');
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(runs, 1);
  t.arm(0);
  t.cancel();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(runs, 1, 'cancelled');
});
