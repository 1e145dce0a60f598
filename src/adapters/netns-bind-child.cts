/**
 * Child half of bindInNetns (netns-sockets.ts): started inside a network namespace with
 * `nsenter --net=/run/netns/NS node netns-bind-child.cjs ADDR PORT`, it says `up` (the parent's
 * start-up bound ends there), binds a UDP socket and a TCP listener and hands both to the parent
 * over the IPC channel, then exits. The sockets stay in the namespace they were created in —
 * Docker's embedded-DNS trick (it setns()es), done without setns, which Node cannot do.
 *
 * Its whole cost is one Node start, paid on every task start, so: node: builtins only, and
 * CommonJS (`.cts` → `.cjs`): Node's ESM loader is not even set up (inside the IPVS VM under TCG,
 * interleaved: ~2.0–2.3 s per start as CommonJS vs ~2.0–3.5 s as an ES module).
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
process.send!({ kind: 'up' });

/** Binds both sockets and hands them to the parent. */
function bindBoth(): void {
  const udp = createSocket('udp4');
  udp.once('error', fail);
  udp.bind(port, addr!, () => {
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
}

// Bind only where the namespace can route to addr (as native/meshd_netns.c's local_route, which says why):
// with lo never up there is no local table, the bind succeeds anyway and every reply would leave from
// 127.0.0.1, which connected clients (dig, glibc's resolver) drop.
const probe = createSocket('udp4');
probe.connect(port, addr!, (err?: Error | null) => {
  probe.close();
  if (err) fail(new Error(`no route to the address in the namespace (lo not up yet): ${err.message}`));
  else bindBoth();
});
