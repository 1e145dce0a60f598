/**
 * Readiness probe of bench/runtime.ts, run inside the lab's client namespace
 * (`ip netns exec CLIENT node mesh-probe.js URL N [WORKERS]`): GETs URL on a new connection
 * each time (so the mesh balances every request anew) until N distinct answers were seen; an
 * answer names its task (nginx: `nginx v1 <hostname>`, busybox httpd: the task id). Prints one
 * JSON line per new answer `{seen, ms}` and a last `{done, requests, errors}`. Refused or
 * failed requests wait 25 ms and each worker pauses 10 ms between requests, so the probe costs
 * the machine little while the tasks start (its resolution is about 10–30 ms per new answer).
 */
import { request } from 'node:http';

const [url, nArg, wArg] = process.argv.slice(2);
const want = Number(nArg);
const workers = Number(wArg ?? 4);
if (!url || !Number.isInteger(want) || want < 1) {
  process.stderr.write('usage: mesh-probe URL N [WORKERS]\n');
  process.exit(2);
}
const t0 = Date.now();
const seen = new Set<string>();
let requests = 0;
let errors = 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function once(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url!, { agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        requests++;
        const key = body.trim();
        if (res.statusCode === 200 && key && !seen.has(key)) {
          seen.add(key);
          process.stdout.write(`${JSON.stringify({ seen: seen.size, ms: Date.now() - t0, answer: key.slice(0, 80) })}\n`);
        }
        resolve(res.statusCode === 200);
      });
      res.on('error', () => resolve(false));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      errors++;
      resolve(false);
    });
    req.end();
  });
}

async function worker(): Promise<void> {
  while (seen.size < want) await sleep((await once()) ? 10 : 25);
}

await Promise.all(Array.from({ length: workers }, worker));
process.stdout.write(`${JSON.stringify({ done: true, requests, errors, ms: Date.now() - t0 })}\n`);
