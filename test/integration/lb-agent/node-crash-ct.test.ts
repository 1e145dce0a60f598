/**
 * A node crash with a UDP client pinned to one of its tasks, in a 3-node lab (real agents, kernel,
 * gossip): a client task on n1 sends datagrams to a UDP service's VIP from ONE source port (one
 * conntrack entry in its sandbox, refreshed by every datagram, as a resolver or a metrics agent
 * does); its backend's node is cut off the underlay and its agent SIGKILLed (no drain, nothing
 * answers). Once gossip declares that node dead, n1's LB removes the backend and deletes the
 * sandbox's conntrack entries to it (core/lb/ct-flush.ts): the next datagram from the same source
 * port reaches the surviving task. Without the flush the client's own datagrams keep the entry
 * alive and pinned to the dead address indefinitely (this test's last wait then fails).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realExec } from '../../../src/adapters/exec.js';
import type { AssignmentInput } from '../../../src/core/assignments.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import { labSignalAgent, type LabState } from '../../../src/lab/lab.js';
import { labBlock } from '../../../src/lab/faults.js';
import type { TaskView } from '../../../src/agent/worker/worker.js';
import { agentClient, createLab, destroyLab, diagnose, waitFor } from '../../helpers/lab.js';
import { APP, PROBE } from '../../vm/lb-mesh-fixture.js';
import { UDP_PEER, udpClient, type UdpClient } from '../lb/udp.js';

const LAB = 'h11cnc';
const UVIP = '10.40.0.4';
const PORT = 5353;
const SPORT = 40053;
/** udp task → [node, ip] */
const UDP: Record<string, [string, string]> = { udp2aaaaaaaa: ['n2', '10.40.0.22'], udp3aaaaaaaa: ['n3', '10.40.0.23'] };
const udpTask = (id: string): AssignmentInput => ({
  task: { id, name: `udp.${id[3]}`, serviceId: 'svcudp', serviceName: 'udp', image: 'udp-peer', argv: [process.execPath, UDP_PEER, 'serve', `udp.${id[3]}`, String(PORT)] },
  desiredState: 'running',
  endpointMode: 'vip',
  attachments: [{ network: APP, ip: UDP[id]![1], prefix: 24, mac: macFromIp(UDP[id]![1]), vip: UVIP }],
  ports: [{ proto: 'udp', target: PORT }],
});

let lab: LabState;
let client: UdpClient | null = null;
const probeNs = `mlab-${LAB}-n1-t-probe1aaaaaa`;

async function tasks(node: string): Promise<TaskView[]> {
  return agentClient(lab, node).call<TaskView[]>('GET', '/v1/tasks');
}

/** The client sandbox's UDP conntrack entries to the VIP. */
async function entries(): Promise<string[]> {
  const r = await realExec.run('conntrack', ['-L', '-p', 'udp', '--orig-dst', UVIP], { netns: probeNs });
  return r.stdout.split('\n').filter((l) => l.includes('sport=40053'));
}

interface LbReply { conntrack?: { runs: number; deleted: number; failures: number; lastError: string | null }; namespaces: Array<{ netns: string; frontends: Array<{ key: string; backends: Array<{ task: string }> }> }> }

after(async () => {
  client?.close();
  if (!process.env.LB_KEEP_LAB) await destroyLab(LAB);
});

describe('lb: a crashed node\'s UDP backend', { timeout: 240_000 }, () => {
  before(async () => {
    lab = await createLab({ name: LAB, nodes: 3 });
    const byNode: Record<string, AssignmentInput[]> = { n1: [PROBE], n2: [udpTask('udp2aaaaaaaa')], n3: [udpTask('udp3aaaaaaaa')] };
    for (const [n, as] of Object.entries(byNode)) await agentClient(lab, n).call('PUT', '/v1/assignments', { assignments: as });
    for (const n of Object.keys(byNode)) {
      await waitFor(`tasks running on ${n}`, async () => (await tasks(n)).every((t) => t.state === 'running') && (await tasks(n)).length === 1, 60_000, 200, () => diagnose(lab, n));
    }
  });

  test('after the LB removes it, the next datagram from the same source port reaches the live task', async () => {
    // Before the first datagram: one sent while the sandbox has no DNAT rule for the VIP yet makes a
    // conntrack entry to the VIP itself, and the client's own datagrams (one source port, every 100 ms)
    // keep that entry alive — no answer ever (a clean clone timed out 60 s here). The flush is for
    // removed backends, not for this; so the client starts once n1 balances the VIP over both tasks.
    await waitFor('n1 balances the VIP over both UDP tasks in the client sandbox', async () => {
      const s = await agentClient(lab, 'n1').call<LbReply>('GET', '/v1/lb/status?service=udp');
      const tasksIn = s.namespaces.filter((n) => n.netns === probeNs).flatMap((n) => n.frontends.flatMap((f) => f.backends.map((b) => b.task)));
      return tasksIn.includes('udp2aaaaaaaa') && tasksIn.includes('udp3aaaaaaaa');
    }, 60_000, 100, () => diagnose(lab, 'n1'));
    client = await udpClient(probeNs, UVIP, PORT, SPORT);
    const c = client;
    const { value: first, ms } = await waitFor('the VIP answers', async () => {
      const r = await c.send(500);
      return r === 'TIMEOUT' ? false : r;
    }, 60_000, 100, () => diagnose(lab, 'n1'));
    const victim = first === 'udp.2' ? 'n2' : 'n3';
    const survivor = first === 'udp.2' ? 'udp.3' : 'udp.2';
    const victimIp = first === 'udp.2' ? UDP.udp2aaaaaaaa![1] : UDP.udp3aaaaaaaa![1];
    console.log(`# pinned to ${first} on ${victim} (${ms} ms to first answer); entry: ${(await entries()).join(' | ')}`);
    for (let i = 0; i < 3; i++) assert.equal(await c.send(1000), first, 'one 5-tuple stays on its backend');

    // The node crashes: off the underlay (no overlay traffic, no gossip) and its agent killed.
    await labBlock(realExec, LAB, victim, {});
    labSignalAgent(LAB, victim, 'SIGKILL');
    const t0 = Date.now();
    // The client keeps sending meanwhile (refreshing its entry), as a real one does.
    const sent: string[] = [];
    const { ms: removedMs } = await waitFor(`n1's LB drops the ${victim} backend`, async () => {
      sent.push(await c.send(300));
      const s = await agentClient(lab, 'n1').call<LbReply>('GET', '/v1/lb/status?service=udp');
      return s.namespaces.every((n) => n.frontends.every((f) => f.backends.every((b) => b.task !== (victim === 'n2' ? 'udp2aaaaaaaa' : 'udp3aaaaaaaa'))));
    }, 120_000, 200, () => diagnose(lab, 'n1'));
    assert.ok(sent.every((r) => r === 'TIMEOUT' || r === first), `while pinned nothing else answered: ${sent.join(',')}`);
    console.log(`# ${victim} removed from n1's LB ${removedMs} ms after the crash (${sent.length} datagrams lost meanwhile)`);

    const { ms: healMs } = await waitFor(`a datagram from port ${SPORT} reaches ${survivor}`, async () => (await c.send(300)) === survivor, 10_000, 0, async () => {
      const s = await agentClient(lab, 'n1').call<LbReply>('GET', '/v1/lb/status');
      return `entries: ${(await entries()).join(' | ')}; conntrack: ${JSON.stringify(s.conntrack)}`;
    });
    const after = await entries();
    const st = await agentClient(lab, 'n1').call<LbReply>('GET', '/v1/lb/status');
    console.log(`# ${survivor} answered ${healMs} ms after the removal was visible (${Date.now() - t0} ms after the crash); conntrack ${JSON.stringify(st.conntrack)}; entry: ${after.join(' | ')}`);
    assert.ok(after.every((l) => !l.includes(`src=${victimIp} `)), 'no entry to the dead backend');
    assert.ok((st.conntrack?.deleted ?? 0) >= 1, 'the LB deleted the entry');
  });
});
