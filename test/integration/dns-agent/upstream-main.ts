/**
 * Stub upstream resolver for the agent DNS tests, run inside a lab namespace (never the internet):
 *   ip netns exec mlab-<lab>-client node upstream-main.js ADDR PORT
 * `outside.example` → A 192.0.2.7, anything else → NXDOMAIN. UDP only (the agent forwards UDP
 * queries over UDP). Prints `ready` once bound; exits on SIGTERM.
 */
import { createSocket } from 'node:dgram';
import DNS from 'dns2';

const { Packet } = DNS;
const [addr = '0.0.0.0', port = '53'] = process.argv.slice(2);
const udp = createSocket('udp4');
let answered = 0;
udp.on('message', (msg, rinfo) => {
  let req;
  try {
    req = Packet.parse(msg);
  } catch {
    return;
  }
  const q = req.questions[0];
  if (!q) return;
  const res = Packet.createResponseFromRequest(req);
  res.header.ra = 1;
  if (q.name.toLowerCase() === 'outside.example' && q.type === Packet.TYPE.A) {
    res.answers.push({ name: q.name, type: Packet.TYPE.A, class: Packet.CLASS.IN, ttl: 30, address: '192.0.2.7' } as never);
  } else if (q.name.toLowerCase() !== 'outside.example') res.header.rcode = 3;
  answered++;
  udp.send(res.toBuffer(), rinfo.port, rinfo.address);
});
udp.bind(Number(port), addr, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  process.stderr.write(`answered ${answered}\n`);
  udp.close();
  process.exit(0);
});
