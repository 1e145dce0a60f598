/**
 * A UDP echo on 127.0.0.1:PORT (run inside a task namespace: `ip netns exec NS node echo-main.js PORT`):
 * the latency floor for qlat-main.js — a separate Node process that answers each datagram at once.
 * Prints `ready` once bound; exits on SIGTERM.
 */
import { createSocket } from 'node:dgram';

const port = Number(process.argv[2] ?? '5300');
const sock = createSocket('udp4');
sock.on('message', (m, r) => sock.send(m, r.port, r.address));
sock.bind(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => sock.close(() => process.exit(0)));
