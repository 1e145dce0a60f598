/**
 * A canary through a real 2-node lab (`mcan`, issue 19 §3), netns runtime (`whoami` answers with
 * its task's address), the real netctl and meshd, nftables dataplane:
 * - `service update --canary 10% --env-add V=2` starts one task of the new spec beside the 3 old
 *   ones; 2,000 NEW connections through the published port reach it 10 % ± 3 % of the time;
 * - `service rollback` removes it (the old tasks never stopped);
 * - a second canary survives a kill -9 and restart of n1 (the only manager): the same 4 tasks and
 *   weights after it; then `service update --canary-complete`: every task ends on the new spec.
 * The 2,000 connections come from one Node process in the lab client's namespace (a fresh TCP
 * connection each, 20 at a time), not a process per request.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inNs, netctl, ok } from '../../helpers/cli.js';
import { labCli, type TaskJ } from '../../helpers/lab-cli.js';
import { agentClient, createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'mcan';
const PORT = 8093;
const tmp = mkdtempSync(join(tmpdir(), 'meshd-mcan-'));
let lab: LabState;
const { on, m, running } = labCli(LAB, 150_000);
const live = (): Promise<TaskJ[]> => running('cw');

/**
 * `n` new connections to `url` from the lab client, 20 at a time: the `ip:` each answer names (or
 * `-`). Each request settles once (an error after its answer must not count twice, which stalled
 * the batch in one run); the batch ends by itself after 60 s with `-` for what is still open.
 */
function ask(url: string, n: number): string[] {
  const js = `const http=require('http');let next=0;const out=new Array(${n}).fill(null);let done=0;` +
    `const fin=()=>{process.stdout.write(out.map((x)=>x??'-').join('\\n')+'\\n');process.exit(0);};` +
    `setTimeout(fin,60000).unref();` +
    `function one(){if(next>=${n})return;const i=next++;let settled=false;` +
    `const set=(v)=>{if(settled)return;settled=true;out[i]=v;if(++done===${n})fin();else one();};` +
    `const q=http.get(${JSON.stringify(url)},{agent:false,timeout:3000},(r)=>{let b='';r.on('data',(d)=>b+=d);` +
    `r.on('end',()=>{const m=/ip: (\\S+)/.exec(b);set(m?m[1]:'-');});r.on('error',()=>set('-'));});` +
    `q.on('timeout',()=>q.destroy(new Error('timeout')));q.on('error',()=>set('-'));}` +
    `for(let i=0;i<20;i++)one();`;
  const r = inNs(lab.client.netns, [process.execPath, '-e', js], 120_000);
  const got = r.stdout.trim().split('\n').filter(Boolean);
  assert.equal(got.length, n, `client batch: exit ${r.code}, ${got.length} of ${n} answers; stderr: ${r.stderr.slice(0, 500)}`);
  return got;
}

/** What node `node`'s LB holds in the kernel for the published port (nftables: one entry per slot). */
async function kernelSlots(node: string): Promise<string[]> {
  const st = await agentClient(lab, node).call<{ namespaces: Array<{ frontends: Array<{ key: string; kernel?: string[] }> }> }>('GET', '/v1/lb/status');
  for (const ns of st.namespaces) for (const f of ns.frontends) if (f.key.includes(String(PORT))) return f.kernel ?? [];
  return [];
}

describe('canary (lab mcan)', { timeout: 400_000 }, () => {
  before(async () => {
    lab = await createLab({ name: LAB, nodes: 2 });
    await joinLabCluster(lab, join(tmp, 'worker.token'));
    ok(await m('service', 'create', '--name', 'cw', '--replicas', '3', '-p', `${PORT}:80`, '--env', 'V=1', '--runtime', 'netns', 'whoami'), 'create cw');
  });
  after(async () => {
    await destroyLab(LAB);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('--canary 10%: one new task beside 3 old ones gets 10 % ± 3 % of 2,000 new connections; rollback removes it', async () => {
    const old = await live();
    assert.equal(old.length, 3);
    const oldIps = new Set(old.map((t) => t.addresses.ingress!));
    const up = ok(await m('service', 'update', '--canary', '10%', '--env-add', 'V=2', 'cw'), 'update --canary');
    assert.match(up.stderr, /canary running: 1 task\(s\) of version 2 beside 3/);
    const now = await live();
    const canary = now.filter((t) => !oldIps.has(t.addresses.ingress!));
    assert.equal(now.length, 4, `3 old + 1 canary running: ${now.map((t) => `${t.name}@v${t.specVersion}`).join(' ')}`);
    assert.equal(canary.length, 1);
    const cip = canary[0]!.addresses.ingress!;
    // Each node's LB holds the weighted slot list: 3 slots per old task, 1 for the canary (10 slots).
    for (const n of lab.nodes.map((x) => x.name)) {
      let last: string[] = [];
      await waitFor(`${n}: ${PORT} holds 10 slots, 1 of them the canary ${cip}`, async () => {
        last = await kernelSlots(n);
        return last.length === 10 && last.filter((s) => s.startsWith(`${cip}:`)).length === 1;
      }, 30_000, 250, () => `kernel slots: ${last.join(',')}`);
    }
    const got = ask(`http://${lab.nodes[0]!.underlay}:${PORT}/`, 2000);
    const hits = got.filter((ip) => ip === cip).length;
    const lost = got.filter((ip) => ip === '-').length;
    process.stdout.write(`# canary got ${hits} of ${got.length} new connections (${(hits / 20).toFixed(1)} %), unanswered ${lost}\n`);
    assert.equal(got.length, 2000);
    assert.equal(lost, 0, 'every connection answered');
    assert.ok(hits >= 140 && hits <= 260, `10 % ± 3 % of 2,000 is 140..260, got ${hits}`);
    assert.ok(got.every((ip) => ip === cip || oldIps.has(ip)), 'only the canary and the old tasks answer');

    ok(await m('service', 'rollback', 'cw'), 'rollback');
    await waitFor('only the 3 old tasks run, unweighted', async () => {
      const ts = await live();
      return ts.length === 3 && ts.every((t) => oldIps.has(t.addresses.ingress!)) && (await kernelSlots('n1')).length === 3;
    }, 60_000, 500);
    const after = ask(`http://${lab.nodes[1]!.underlay}:${PORT}/`, 100);
    assert.ok(after.every((ip) => oldIps.has(ip)), `after rollback only old tasks answer: ${[...new Set(after)].join(',')}`);
  });

  test('the manager is killed while the canary is held: restarted, it holds it; --canary-complete rolls the rest, unweighted', async () => {
    ok(await m('service', 'update', '--canary', '10%', '--env-add', 'V=3', 'cw'), 'update --canary');
    const held = (await live()).map((t) => t.id).sort();
    assert.equal(held.length, 4);
    // n1 runs the only manager: kill -9 it and start it again (its tasks are adopted). The new
    // manager must resume the canary held: the same 4 tasks, 10 weighted slots on each node's LB.
    ok(await netctl(['lab', 'kill', 'n1', '--name', LAB]), 'kill n1');
    ok(await netctl(['lab', 'start', 'n1', '--name', LAB]), 'start n1');
    let seen = '';
    await waitFor('the restarted manager holds the canary: state canary, the same 4 tasks running', async () => {
      const r = await m('service', 'inspect', 'cw', '--format', '{{json .update}}');
      const ts = r.code === 0 ? (await live()).map((t) => t.id).sort() : [];
      seen = `${r.stdout.trim() || r.stderr.trim()} tasks ${ts.join(',')} (want ${held.join(',')})`;
      return r.code === 0 && /"state":"canary"/.test(r.stdout) && ts.join() === held.join();
    }, 60_000, 500, () => seen);
    for (const n of lab.nodes.map((x) => x.name)) {
      let last: string[] = [];
      await waitFor(`${n}: ${PORT} still holds 10 weighted slots after the manager restart`, async () => {
        last = await kernelSlots(n);
        return last.length === 10;
      }, 30_000, 250, () => `kernel slots: ${last.join(',')}`);
    }
    const still = (await live()).map((t) => t.id).sort();
    assert.deepEqual(still, held, 'no task replaced or dropped by the restarted manager');
    const r = ok(await m('service', 'update', '--canary-complete', 'cw'), 'canary-complete');
    assert.match(r.stderr, /verify: Service converged/);
    const ts = await live();
    const version = Math.max(...ts.map((t) => t.specVersion));
    assert.deepEqual(ts.map((t) => t.specVersion), [version, version, version], 'three tasks, all on the new spec');
    let last: string[] = [];
    await waitFor('n1\'s LB holds the 3 new tasks, one slot each (weights gone)', async () => {
      last = await kernelSlots('n1');
      return last.length === 3 && ts.every((t) => last.some((s) => s.startsWith(`${t.addresses.ingress!}:`)));
    }, 30_000, 250, () => `kernel slots: ${last.join(',')}`);
    const none = await m('service', 'update', '--canary-complete', 'cw');
    assert.notEqual(none.code, 0, 'no canary left to complete');
    assert.match(none.stderr, /has no canary running/);
  });
});
