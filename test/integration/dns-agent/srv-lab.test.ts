/**
 * SRV records and stable slot names through a real 2-node lab (`msrv`, issue 19 item 4): netns tasks of a
 * replicated service spread over both nodes, `dig` run inside a client task's namespace asks the embedded
 * DNS at 127.0.0.11 — `_80._tcp.web` SRV names every task with its port and the target's address rides in
 * the additional section, `_http` / `_https` are the 80 / 443 aliases, `<slot>.web` answers the task in
 * that slot, and after a scale-down the removed slot's name is NXDOMAIN while SRV lists the rest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ok } from '../../helpers/cli.js';
import { labCli, type TaskJ } from '../../helpers/lab-cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';

const LAB = 'msrv';
const tmp = mkdtempSync(join(tmpdir(), 'meshd-msrv-'));
let lab: LabState;
const { on, m, json, running } = labCli(LAB, 150_000);

/** One parsed `dig` reply: header status and the answer / additional records as [owner, type, rdata]. */
interface Dig { status: string; answer: string[][]; additional: string[][]; raw: string }
function parseDig(out: string): Dig {
  const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? '(no header)';
  const section = (name: string): string[][] => {
    const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out);
    if (!m) return [];
    return m[1]!.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => {
      const [owner, , , type, ...rdata] = l.trim().split(/\s+/);
      return [owner!, type!, rdata.join(' ')];
    });
  };
  return { status, answer: section('ANSWER'), additional: section('ADDITIONAL'), raw: out };
}

describe('SRV and slot names inside a task (lab msrv)', { timeout: 300_000 }, () => {
  let client = { node: '', name: '' };
  const dig = async (name: string, type = 'A'): Promise<Dig> => {
    const r = ok(await on(client.node, 'exec', client.name, '--', 'dig', '+time=2', '+tries=2', '@127.0.0.11', name, type), `dig ${name} ${type}`);
    return parseDig(r.stdout);
  };
  const webTasks = (): Promise<TaskJ[]> => running('web');
  const slotOf = (t: TaskJ): number => Number(t.name.split('.')[1]);

  before(async () => {
    lab = await createLab({ name: LAB, nodes: 2 });
    await joinLabCluster(lab, join(tmp, 'worker.token'), { waitReady: true });
    ok(await m('network', 'create', '--subnet', '10.41.0.0/24', 'app'), 'network create');
    // `-p 80` / `-p 443`: target ports 80 and 443 (published ports assigned from 30000+): what SRV names.
    const [w, c] = await Promise.all([
      m('service', 'create', '--name', 'web', '--replicas', '3', '--network', 'app', '-p', '80', '-p', '443', '--runtime', 'netns', 'whoami'),
      m('service', 'create', '--name', 'cl', '--network', 'app', '--runtime', 'netns', 'busybox', 'sleep', '3600'),
    ]);
    ok(w, 'create web');
    ok(c, 'create cl');
    const [ct] = await running('cl');
    assert.ok(ct?.node, 'client task placed');
    client = { node: ct.node, name: 'cl.1' };
  });
  after(async () => {
    await destroyLab(LAB);
    rmSync(tmp, { recursive: true, force: true });
  });

  test('_80._tcp.web SRV names every task with its port; targets resolve in the additional section; _http/_https aliases', async () => {
    const tasks = await webTasks();
    assert.equal(tasks.length, 3);
    assert.ok(new Set(tasks.map((t) => t.node)).size === 2, `tasks on both nodes: ${tasks.map((t) => t.node).join()}`);
    const want = tasks.map((t) => [`${t.name}.app.`, t.addresses.app!]).sort();
    const srvOf = (d: Dig, port: number): string[][] => d.answer.filter((r) => r[1] === 'SRV').map((r) => {
      const [prio, weight, p, target] = r[2]!.split(' ');
      assert.deepEqual([prio, weight, Number(p)], ['0', '1', port], r.join(' '));
      return [target!, d.additional.find((a) => a[0] === target && a[1] === 'A')?.[2] ?? '(no additional A)'];
    }).sort();
    // Gossip carries the other node's records: wait until all three are in (each dig prints what it got).
    const { value: d80 } = await waitFor('_80._tcp.web lists 3 tasks', async () => {
      const d = await dig('_80._tcp.web', 'SRV');
      return d.answer.length === 3 ? d : undefined;
    }, 30_000, 500, async () => (await dig('_80._tcp.web', 'SRV')).raw);
    assert.equal(d80.status, 'NOERROR');
    assert.deepEqual(srvOf(d80, 80), want);
    assert.deepEqual(srvOf(await dig('_http._tcp.web', 'SRV'), 80), want);
    assert.deepEqual(srvOf(await dig('_https._tcp.web', 'SRV'), 443), want);
    assert.deepEqual(srvOf(await dig('_443._tcp.web.app', 'SRV'), 443), want);
    // A target name answers by itself too; a port no task has is NXDOMAIN, not forwarded upstream.
    const t0 = tasks[0]!;
    assert.deepEqual((await dig(`${t0.name}.app`)).answer.map((r) => r[2]), [t0.addresses.app]);
    assert.equal((await dig('_8080._tcp.web', 'SRV')).status, 'NXDOMAIN');
  });

  test('<slot>.web answers the task in that slot; after a scale-down the removed slot is NXDOMAIN', async () => {
    const tasks = await webTasks();
    assert.deepEqual(tasks.map(slotOf).sort(), [1, 2, 3]);
    for (const t of tasks) {
      const d = await dig(`${slotOf(t)}.web`);
      assert.deepEqual([d.status, d.answer.map((r) => r[2])], ['NOERROR', [t.addresses.app]], `${slotOf(t)}.web: ${d.raw}`);
    }
    assert.equal((await dig('4.web')).status, 'NXDOMAIN');

    ok(await m('service', 'scale', 'web=2'), 'scale web=2');
    const left = await waitFor('web at 2 running tasks', async () => {
      const ts = await webTasks();
      return ts.length === 2 ? ts : undefined;
    }, 60_000, 500);
    const gone = [1, 2, 3].find((s) => !left.value.some((t) => slotOf(t) === s))!;
    await waitFor(`${gone}.web NXDOMAIN`, async () => (await dig(`${gone}.web`)).status === 'NXDOMAIN', 30_000, 500, async () => (await dig(`${gone}.web`)).raw);
    const srv = await dig('_80._tcp.web', 'SRV');
    assert.deepEqual(srv.answer.map((r) => r[2]!.split(' ')[3]).sort(), left.value.map((t) => `${t.name}.app.`).sort(), srv.raw);
    for (const t of left.value) assert.deepEqual((await dig(`${slotOf(t)}.web`)).answer.map((r) => r[2]), [t.addresses.app]);
  });
});
