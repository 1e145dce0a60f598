/**
 * Host publish mode (`--publish mode=host,published=8080,target=80`) in a 3-node lab: service `hm`
 * with 2 tasks on n1 and n2 (through the worker, `PUT /v1/assignments`). From the lab client:
 * each of n1 and n2 answers on 8080 with ITS OWN task only, the task sees the client's real
 * address (conntrack in the task's namespace), and n3 — no task — refuses at once. No ingress
 * address is configured on any node: host mode does not involve the ingress network.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realExec } from '../../../src/adapters/exec.js';
import type { AssignmentInput } from '../../../src/core/assignments.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import type { LabState } from '../../../src/lab/lab.js';
import type { TaskView } from '../../../src/agent/worker/worker.js';
import type { LbStats } from '../../../src/agent/lb/lb.js';
import { agentClient, createLab, destroyLab, waitFor } from '../../helpers/lab.js';
import { netctl } from '../../helpers/cli.js';

const LAB = 'lbh';
const NET = { id: 'lbhnet0001', name: 'hmnet', vni: 4311, subnet: '10.41.0.0/24', gateway: '10.41.0.1' };
/** task id → [node, address] */
const HM: Record<string, [string, string]> = { hm1aaaaaaaaa: ['n1', '10.41.0.11'], hm2aaaaaaaaa: ['n2', '10.41.0.12'] };

function hmTask(id: string): AssignmentInput {
  const ip = HM[id]![1];
  return {
    task: { id, name: `hm.${id[2]}`, serviceId: 'svchm', serviceName: 'hm', image: 'whoami' },
    desiredState: 'running',
    endpointMode: 'dnsrr',
    attachments: [{ network: NET, ip, prefix: 24, mac: macFromIp(ip), vip: null }],
    ports: [{ proto: 'tcp', target: 80, published: 8080, mode: 'host' }],
  };
}

let lab: LabState;

async function fromClient(url: string, n: number): Promise<string[]> {
  const script = `for i in $(seq ${n}); do r=$(curl -s -m 2 ${url}) || r="ERR$?"; echo "$r" | head -1; done`;
  const r = await netctl(['lab', 'client', '--name', LAB, '--', 'sh', '-c', script], { timeoutMs: 120_000 });
  return r.stdout.split('\n').filter(Boolean).map((l) => l.replace(/^task: /, ''));
}

after(async () => {
  if (!process.env.LB_KEEP_LAB) await destroyLab(LAB);
});

describe('lb: host publish mode in a 3-node lab', { timeout: 300_000 }, () => {
  before(async () => {
    lab = await createLab({ name: LAB, nodes: 3 });
    for (const n of ['n1', 'n2', 'n3']) {
      const mine = Object.keys(HM).filter((id) => HM[id]![0] === n);
      await agentClient(lab, n).call('PUT', '/v1/assignments', { assignments: mine.map(hmTask) });
    }
    for (const n of ['n1', 'n2']) {
      await waitFor(`hm task running on ${n}`, async () => {
        const ts = await agentClient(lab, n).call<TaskView[]>('GET', '/v1/tasks');
        return ts.length === 1 && ts[0]!.state === 'running';
      }, 60_000);
    }
  });

  test('n1 and n2 answer with their own task; the task sees the client\'s address; n3 refuses at once', async () => {
    const [n1, n2, n3] = lab.nodes;
    for (const [node, want] of [[n1!, 'hm.1'], [n2!, 'hm.2']] as const) {
      const url = `http://${node.underlay}:8080/`;
      const { ms: took } = await waitFor(`host port on ${node.name}`, async () => (await fromClient(url, 1))[0] === want, 60_000, 300);
      const answers = await fromClient(url, 10);
      assert.deepEqual([...new Set(answers)], [want], `${node.name}: ${answers.join(' ')}`);
      const id = Object.keys(HM).find((k) => HM[k]![0] === node.name)!;
      const ct = await realExec.run('conntrack', ['-L', '-p', 'tcp', '--dport', '80'], { netns: `mlab-${LAB}-${node.name}-t-${id}` });
      assert.match(ct.stdout, new RegExp(`src=${lab.client.underlay.replace(/\./g, '\\.')} dst=${HM[id]![1].replace(/\./g, '\\.')} `), `${node.name}: the task sees the client's address:\n${ct.stdout}`);
      console.log(`# host mode on ${node.name}: ${want} only, client address ${lab.client.underlay} preserved (${took} ms to converge)`);
    }
    const t = Date.now();
    const far = await fromClient(`http://${n3!.underlay}:8080/`, 3);
    const took = Date.now() - t;
    assert.deepEqual(far, ['ERR7', 'ERR7', 'ERR7'], 'n3 runs no task: connection refused');
    assert.ok(took < 10_000, `3 refusals took ${took} ms`);
    // n3 never programmed anything for host mode; n1 holds one host-mode frontend
    const st = await agentClient(lab, 'n1').call<{ stats: LbStats; namespaces: Array<{ kind: string; frontends: unknown[] }> }>('GET', '/v1/lb/status');
    assert.equal(st.namespaces.find((n) => n.kind === 'host')?.frontends.length, 1);
    assert.ok(st.stats.syncs >= 1 && st.stats.fullResyncs >= 1 && st.stats.failures === 0, JSON.stringify(st.stats));
    const s3 = await agentClient(lab, 'n3').call<{ namespaces: Array<{ kind: string }> }>('GET', '/v1/lb/status');
    assert.equal(s3.namespaces.some((n) => n.kind === 'host'), false);
    console.log(`# n3 (no task) refused 3 connections in ${took} ms; n1 stats ${JSON.stringify(st.stats)}`);
  });

  test('the task leaves n2: its host port closes there, n1 keeps answering', async () => {
    const [n1, n2] = lab.nodes;
    await agentClient(lab, 'n2').call('PUT', '/v1/assignments', { assignments: [] });
    await waitFor('n2 host port closed', async () => (await fromClient(`http://${n2!.underlay}:8080/`, 1))[0] === 'ERR7', 60_000, 300);
    assert.deepEqual([...new Set(await fromClient(`http://${n1!.underlay}:8080/`, 5))], ['hm.1']);
  });
});
