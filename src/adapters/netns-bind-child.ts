/**
 * Child half of bindInNetns (netns-sockets.ts): started inside a network namespace with
 * `ip netns exec NS node netns-bind-child.js ADDR PORT`, it binds a UDP socket and a TCP
 * listener there and hands both to the parent over the IPC channel, then exits. The sockets
 * stay in the namespace they were created in — Docker's embedded-DNS trick (it setns()es),
 * done without setns, which Node cannot do.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

const [addr, portRaw] = process.argv.slice(2);
const port = Number(portRaw);
const fail = (e: Error) => {
  process.send?.({ kind: 'error', message: e.message }, undefined, {}, () => process.exit(1));
};
if (!process.send || !addr || !Number.isInteger(port)) {
  process.stderr.write('netns-bind-child: must be started by bindInNetns\n');
  process.exit(2);
}
const udp = createSocket('udp4');
udp.once('error', fail);
udp.bind(port, addr, () => {
  const tcp = createServer();
  tcp.once('error', fail);
  tcp.listen(port, addr, () => {
    // disconnect (not exit) after both sends: the parent sees 'disconnect' only after it has
    // received every message, so it can never mistake a fast exit for a failure
    process.send!({ kind: 'udp' }, udp, {}, () => {
      process.send!({ kind: 'tcp' }, tcp, {}, () => {
        udp.close();
        tcp.close();
        process.disconnect();
      });
    });
  });
});
