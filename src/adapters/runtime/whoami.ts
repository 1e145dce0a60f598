/**
 * Built-in demo task `whoami`: a tiny HTTP server answering `GET /` with
 *   task: <MESHD_TASK_NAME>
 *   ip: <MESHD_TASK_IP>
 *   node: <MESHD_NODE>
 * on port MESHD_WHOAMI_PORT (default 80); `GET /?remote` adds `remote: <the peer's address>` (an
 * IPv4 peer without its `::ffff:` prefix), so a test can see whether the client's own address
 * reached the task (`policy=local`) or a masquerading balancer's (issue #19). Run as `node dist/src/adapters/runtime/whoami.js`
 * inside the task's namespace. Exits cleanly on SIGTERM (so `stop` needs no SIGKILL).
 */
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

/** The answer's body; `remote` (the peer's address, only when asked for) is its last line. */
export function whoamiBody(env: NodeJS.ProcessEnv, remote?: string): string {
  const peer = remote === undefined ? '' : `remote: ${remote.replace(/^::ffff:/, '')}\n`;
  return `task: ${env.MESHD_TASK_NAME ?? ''}\nip: ${env.MESHD_TASK_IP ?? ''}\nnode: ${env.MESHD_NODE ?? ''}\n${peer}`;
}

function main(): void {
  const port = Number(process.env.MESHD_WHOAMI_PORT ?? 80);
  const server = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/' || req.url?.startsWith('/?'))) {
      const remote = /^\/\?(.*&)?remote(=|&|$)/.test(req.url) ? (req.socket.remoteAddress ?? '?') : undefined;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(whoamiBody(process.env, remote));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  // `::` takes IPv4 too (dual-stack socket), so a task answers on its IPv6 address and VIP as well
  // (issue #19 item 2); a namespace without IPv6 falls back to IPv4 only, as before.
  server.once('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EAFNOSUPPORT' && e.code !== 'EADDRNOTAVAIL') throw e;
    server.listen(port, '0.0.0.0');
  });
  server.listen(port, '::');
  const bye = (): void => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
