/**
 * A steady request loop for the rotation-under-load proof (gossip-keys-lab.test.ts), run inside a lab
 * namespace: `ip netns exec NS node load-main.js URL [URL...]`. One request at a time, round-robin over
 * the URLs, each on a NEW connection (so every request is balanced afresh and crosses the overlay to
 * whichever node's task the LB picks), 2 s timeout each. A request counts as answered only with
 * status 200 and a whoami body (`task: NAME`). Prints one JSON line `{ ok, failed }` a second, and on
 * SIGTERM finishes the request in flight, prints `{ final: true, ok, failed, failures, byTask }`
 * (failures: the first 20, with time and URL, so a failing run says what failed) and exits.
 */
import { request } from 'node:http';

const urls = process.argv.slice(2);
if (urls.length === 0) {
  process.stderr.write('usage: load-main.js URL [URL...]\n');
  process.exit(2);
}
const TIMEOUT_MS = 2_000;
/** Pause between requests: a steady ~30–50 req/s without eating the 2-core machine. */
const PAUSE_MS = 15;
let ok = 0;
let failed = 0;
let stopping = false;
const failures: string[] = [];
const byTask: Record<string, number> = {};

function once(url: string): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => {
        const task = /task: (\S+)/.exec(body)?.[1];
        if (res.statusCode === 200 && task) {
          byTask[task] = (byTask[task] ?? 0) + 1;
          resolve(null);
        } else resolve(`status ${res.statusCode}: ${body.slice(0, 60)}`);
      });
      res.on('error', (e) => resolve(`response: ${e.message}`));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
    req.on('error', (e) => resolve(e.message));
    req.end();
  });
}

async function loop(): Promise<void> {
  for (let i = 0; !stopping; i++) {
    const url = urls[i % urls.length]!;
    const err = await once(url);
    if (err === null) ok++;
    else {
      failed++;
      if (failures.length < 20) failures.push(`${new Date().toISOString()} ${url}: ${err}`);
    }
    await new Promise((r) => setTimeout(r, PAUSE_MS));
  }
}

const tick = setInterval(() => process.stdout.write(JSON.stringify({ ok, failed }) + '\n'), 1_000);
const done = loop();
process.on('SIGTERM', () => {
  stopping = true;
  clearInterval(tick);
  void done.then(() => {
    process.stdout.write(JSON.stringify({ final: true, ok, failed, failures, byTask }) + '\n');
    process.exit(0);
  });
});
