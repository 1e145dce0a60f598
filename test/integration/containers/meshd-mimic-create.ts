/**
 * Stands in for a lab agent caught in a `docker create` (teardown-inflight.test.ts): sends one
 * create over the engine socket the way the docker runtime does (labels `meshd.prefix`), says
 * `sent` once the request is in the socket, and waits for the response it is never meant to read
 * (the test SIGKILLs it). Its path holds "meshd", so `lab down` takes it for the node's agent.
 * argv: SOCKET NAME PREFIX IMAGE
 */
import { request } from 'node:http';

const [socketPath, name, prefix, image] = process.argv.slice(2);
if (!socketPath || !name || !prefix || !image) throw new Error('usage: SOCKET NAME PREFIX IMAGE');
const body = JSON.stringify({ Image: image, Cmd: ['/bin/busybox', 'true'], Labels: { 'meshd.prefix': prefix } });
const req = request({
  socketPath, method: 'POST', path: `/v1.41/containers/create?name=${encodeURIComponent(name)}`,
  headers: { host: 'docker', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
}, (res) => {
  process.stdout.write(`answered ${res.statusCode}\n`);
});
req.on('error', (e) => process.stdout.write(`error ${e.message}\n`));
req.end(body, () => process.stdout.write('sent\n'));
setInterval(() => undefined, 60_000);
