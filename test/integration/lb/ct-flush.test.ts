/**
 * Conntrack entries of a backend that vanished without a drain (its node crashed), in real
 * namespaces (topology.ts: client → lb sandbox → backends b1, b2) with the real nftables dataplane
 * and `conntrack`:
 * - a UDP client with ONE source port talks to the VIP (and, second case, to a published port of
 *   the routing mesh) and is pinned to b1; b1's link goes down (no RST, no ICMP: a dead node);
 * - the LB's apply replaces b1 with b2. Without the flush the next datagram still follows the
 *   conntrack entry to b1 and is lost (checked: this is the bug); the entry is shown before;
 * - after the flush (one `conntrack -R` run for the apply's stale backends) the next datagram from
 *   the same source port reaches b2, and the entry now points at b2;
 * - a TCP connection pinned to b1 the same way: after the flush its next segment is picked up by
 *   conntrack as new, DNATed to b2, which has no such socket and answers RST — the client learns
 *   at once instead of retransmitting to a dead address for ~15 min (core/lb/ct-flush.ts).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { realExec } from '../../../src/adapters/exec.js';
import { ExecConntrack } from '../../../src/adapters/dataplane/conntrack.js';
import { NftablesDataplane } from '../../../src/adapters/dataplane/nftables.js';
import type { Backend, LbDesired } from '../../../src/core/lb/model.js';
import { hold, names, setup, teardown, type Topology } from './topology.js';
import { UDP_PEER, udpClient, waitReady } from './udp.js';

const VIP = '10.96.0.10';
const UDP_PORT = 53;
const UDP_TARGET = 5353;
const PUBLISHED = 5300;
const SPORT = 40053;

async function udpServe(t: Topology, ns: string, name: string): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, UDP_PEER, 'serve', name, String(UDP_TARGET)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.servers.push(child);
  await waitReady(child, `udp server ${name}`);
}

/** The lb sandbox's conntrack entries of protocol `proto` from the client, one line each. */
async function entries(t: Topology, proto: 'udp' | 'tcp'): Promise<string[]> {
  const r = await realExec.run('conntrack', ['-L', '-p', proto], { netns: t.lb });
  return r.stdout.split('\n').filter((l) => l.includes(`src=${t.clientIp} `));
}

const t = names('h11cct', 2);
after(() => teardown(t));

for (const kind of ['vip', 'ingress'] as const) {
  describe(`conntrack flush of a crashed backend (${kind})`, { timeout: 120_000 }, () => {
    test('the next datagram from the same source port reaches a live backend only after the flush; TCP gets RST', async () => {
      await setup(t, 8080);
      for (const b of t.backends) await udpServe(t, b.ns, b.name);
      const [b1, b2] = t.backends as [Topology['backends'][0], Topology['backends'][0]];
      const be = (b: typeof b1): Backend => ({ id: b.name, ip: b.ip, state: 'active' });
      const want = (b: typeof b1): LbDesired => (kind === 'vip'
        ? { services: [{ id: 'svcu', name: 'u', vip: VIP, ports: [{ proto: 'udp', port: UDP_PORT, targetPort: UDP_TARGET }, { proto: 'tcp', port: 8080, targetPort: 8080 }], backends: [be(b)] }], ingress: [] }
        : { services: [], ingress: [
          { service: 'svcu', publishedPort: PUBLISHED, proto: 'udp', targetPort: UDP_TARGET, policy: 'cluster', backends: [be(b)] },
          { service: 'svcu', publishedPort: 8080, proto: 'tcp', targetPort: 8080, policy: 'cluster', backends: [be(b)] },
        ] });
      const host = kind === 'vip' ? VIP : t.lbClientSideIp;
      const dp = new NftablesDataplane(realExec);
      await dp.apply(want(b1), { netns: t.lb });

      const udp = await udpClient(t.client, host, kind === 'vip' ? UDP_PORT : PUBLISHED, SPORT);
      const tcp = await hold(t.client, host, 8080);
      try {
        assert.equal(await udp.send(2000), 'b1', 'pinned to b1');
        assert.match(tcp.greeting, /^b1 /);
        const before = await entries(t, 'udp');
        console.log(`# ${kind}: conntrack before: ${before.join(' | ')}`);
        assert.ok(before.some((l) => l.includes(`src=${b1.ip} `)), 'an entry to b1');

        // b1's node crashes: its link goes, nothing answers (no RST, no ICMP), then b2 replaces it.
        await realExec.check('ip', ['-n', b1.ns, 'link', 'set', 'eth0', 'down']);
        const r = await dp.apply(want(b2), { netns: t.lb });
        assert.equal(r.mode, 'incremental');
        assert.deepEqual(r.stale.map((s) => `${s.proto} ${s.ip}:${s.targetPort}`).sort(), [`tcp ${b1.ip}:8080`, `udp ${b1.ip}:${UDP_TARGET}`]);

        // Without the flush: the entry keeps the flow on the dead backend (the bug).
        assert.equal(await udp.send(1000), 'TIMEOUT', 'without the flush the datagram follows the old entry to b1');
        const pinned = await entries(t, 'udp');
        assert.ok(pinned.some((l) => l.includes(`src=${b1.ip} `)), `still pinned to b1: ${pinned.join(' | ')}`);

        const t0 = performance.now();
        const res = await new ExecConntrack(realExec).flush(r.stale, { netns: t.lb });
        const flushMs = Math.round(performance.now() - t0);
        assert.equal(res.lines, 2);
        assert.ok(res.deleted >= 2, `deleted the UDP and the TCP entry (${res.deleted})`);
        const cleared = await entries(t, 'udp');
        assert.ok(!cleared.some((l) => l.includes(`src=${b1.ip} `)), `no entry to b1 left: ${cleared.join(' | ')}`);

        assert.equal(await udp.send(2000), 'b2', 'after the flush the same 5-tuple reaches b2');
        const afterFlush = await entries(t, 'udp');
        console.log(`# ${kind}: flush ${flushMs} ms (${res.lines} lines, ${res.deleted} entries); conntrack after: ${afterFlush.join(' | ')}`);
        assert.ok(afterFlush.some((l) => l.includes(`src=${b2.ip} `)), 'the new entry points at b2');

        const t1 = performance.now();
        assert.equal(await tcp.ping(), '', 'the held TCP connection is reset (b2 has no such socket)');
        console.log(`# ${kind}: held TCP connection reset ${Math.round(performance.now() - t1)} ms after its next segment`);
      } finally {
        udp.close();
        tcp.close();
        await teardown(t);
      }
    });
  });
}
