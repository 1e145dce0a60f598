/** Start readiness: /proc/net socket table parsing (table tests) and the probe on this process. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { missingPorts, servingPorts, waitServing } from '../../../../src/agent/worker/ready.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:B1EF 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2945264 1 0 100 0 0 10 0
   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1135 1 0 100 0 0 10 0
   2: 0A000005:0050 0A000009:C350 01 00000000:00000000 00:00000000 00000000     0        0 1136 1 0 100 0 0 10 0
   3: 0A000005:1F90 0A000009:C351 06 00000000:00000000 00:00000000 00000000     0        0 0 1 0 100 0 0 10 0
garbage line
   4: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 9 1
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  1: 0B00007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0
  2: 0A000005:D431 0A000009:0035 01 00000000:00000000 00:00000000 00000000     0        0 1 2 0 0
`;

describe('worker readiness', () => {
  test('servingPorts: LISTEN tcp sockets, bound unconnected udp sockets; v4 and v6 rows', () => {
    assert.deepEqual([...servingPorts(TCP, 'tcp')].sort((a, b) => a - b), [80, 0x1f91, 0xb1ef]);
    assert.deepEqual([...servingPorts(UDP, 'udp')], [53]);
    assert.deepEqual([...servingPorts('', 'tcp')], []);
    assert.deepEqual([...servingPorts(TCP, 'udp')], []);
  });

  test('missingPorts table', () => {
    const s = { tcp: new Set([80]), udp: new Set([53]) };
    const rows: Array<[Parameters<typeof missingPorts>[0], ReturnType<typeof missingPorts>]> = [
      [[], []],
      [[{ proto: 'tcp', port: 80 }], []],
      [[{ proto: 'udp', port: 80 }], [{ proto: 'udp', port: 80 }]],
      [[{ proto: 'tcp', port: 81 }, { proto: 'tcp', port: 81 }, { proto: 'udp', port: 53 }], [{ proto: 'tcp', port: 81 }]],
    ];
    for (const [want, out] of rows) assert.deepEqual(missingPorts(want, s), out, JSON.stringify(want));
  });

  test('waitServing on this process: ready once a port listens, timeout otherwise, exited for a gone pid', async () => {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      assert.equal(await waitServing(process.pid, [{ proto: 'tcp', port }], 1000), 'ready');
      assert.equal(await waitServing(process.pid, [{ proto: 'tcp', port: port === 1 ? 2 : 1 }], 100), 'timeout');
      assert.equal(await waitServing(2 ** 22 + 12345, [{ proto: 'tcp', port }], 100), 'exited');
    } finally {
      srv.close();
    }
  });
});
