/**
 * The agent's sandbox binder against the race that left one task namespace's 127.0.0.11 silent for a
 * whole lab run (agent-dns under CPU load): the watch sees a new namespace file as soon as `ip netns
 * add` creates it, before the namespace is mounted on it, so the binder's `ip link set lo up` can fail
 * while its bind a moment later succeeds — in a namespace whose lo was never up, where the kernel has no
 * local table, takes 127.0.0.11 for a broadcast address and binds it without a source address. Every
 * reply then left from 127.0.0.1 and connected clients (dig, glibc's resolver) dropped them, though the
 * agent and its DNS worker read and answered each query. Here the first `lo up` fails as it did then
 * and the runtime brings lo up a little later: a connected client inside must get its replies.
 * Real namespace `h11lo<pid>-t-…`, removed also on failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { realExec, type Exec } from '../../../src/adapters/exec.js';
import { systemClock } from '../../../src/adapters/clock.js';
import { DnsSubsystem } from '../../../src/agent/dns/dns.js';
import type { GossipSubsystem } from '../../../src/agent/gossip/gossip.js';
import { FakeGossip } from '../../helpers/fake-gossip.js';

const PREFIX = `h11lo${process.pid}-`;
const NS = `${PREFIX}t-abcdefabcdef`;

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('sandbox binder: a namespace whose lo was not up yet', { timeout: 60_000 }, () => {
  before(async () => {
    await realExec.run('ip', ['netns', 'del', NS]);
  });
  after(async () => {
    await realExec.run('ip', ['netns', 'del', NS]);
  });

  test('the binder\'s own `lo up` fails once: the socket it keeps answers a connected client (dig)', async () => {
    let loUpFailures = 0;
    const exec: Exec = {
      run: (cmd, args, opts) => {
        if (loUpFailures === 0 && args.join(' ') === `-n ${NS} link set lo up`) {
          loUpFailures++;
          return Promise.resolve({ code: 1, stdout: '', stderr: `Cannot open network namespace "${NS}": Invalid argument` });
        }
        return realExec.run(cmd, args, opts);
      },
      check: (cmd, args, opts) => realExec.check(cmd, args, opts),
    };
    const dns = new DnsSubsystem({
      nodeName: 'n1', prefix: PREFIX, gossip: new FakeGossip() as unknown as GossipSubsystem, clock: systemClock,
      log: pino({ level: 'silent' }), exec, upstreams: [], resyncMs: 3_600_000,
    });
    await realExec.check('ip', ['netns', 'add', NS]); // lo down, as `ip netns add` leaves it
    await dns.start();
    try {
      await until('the binder tried once', () => loUpFailures === 1 && (dns.sandboxes.bindFailures > 0 || dns.sandboxes.has(NS)));
      // the runtime's plumbing brings lo up (attach.ts), after the binder's first attempt
      await realExec.check('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
      await until('127.0.0.11 served in the namespace', () => dns.sandboxes.has(NS));
      // dig's UDP socket is connected to 127.0.0.11:53: a reply from any other source never reaches it.
      // No task record: REFUSED is the expected answer — what matters is that an answer arrives.
      const r = await realExec.run('dig', ['@127.0.0.11', '+tries=2', '+time=2', 'web'], { netns: NS, timeoutMs: 15_000 });
      assert.equal(r.code, 0, `dig got no reply (exit ${r.code}): ${r.stdout}${r.stderr}; binder: ${JSON.stringify(dns.sandboxes.view(Date.now()))}`);
      assert.match(r.stdout, /status: (REFUSED|NOERROR|NXDOMAIN)/);
    } finally {
      await dns.stop();
    }
  });
});
