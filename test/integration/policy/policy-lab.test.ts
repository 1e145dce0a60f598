/**
 * Issue #19 item 1, policies between services, end to end on a 2-node lab (`mpol`, netns
 * runtime) through the real netctl and meshd:
 * - `network create --default-deny app`, `web` (2 tasks, one per node) with `--allow-from
 *   client`, plus `client` and `rogue` on the same network;
 * - client reaches web through its VIP and each task address; rogue is REFUSED at once on both
 *   nodes' tasks (curl exit 7, connection refused, in < 100 ms: a reset, never a timeout);
 * - `service update --allow-from-add rogue` opens it, `--allow-from-rm rogue` closes it again,
 *   without replacing web's tasks;
 * - `netctl debug trace --from <rogue task> --to web:80` says "denied by policy of web".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ok } from '../../helpers/cli.js';
import { createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import { labCli, type TaskJ } from '../../helpers/lab-cli.js';
import { httpGet, type HttpProbe } from '../../helpers/task-probes.js';

const LAB = 'mpol';
const { on, m, running: tasks, waitRunning, netnsOf } = labCli(LAB);

/** One HTTP GET from inside a task's namespace; `ms` is curl's own total time (process start excluded). */
const probe = (from: TaskJ, ip: string): HttpProbe => httpGet(netnsOf(from), `http://${ip}/`);

let web: TaskJ[] = [];
let client: TaskJ;
let rogue: TaskJ;
let vip = '';

before(async () => {
  const lab = await createLab({ name: LAB, nodes: 2 });
  await joinLabCluster(lab, `/run/meshd/${LAB}/worker.token`, { json: false });
  ok(await m('network', 'create', '--default-deny', 'app'), 'network create');
  ok(await m('service', 'create', '--name', 'web', '--replicas', '2', '--network', 'app', '--allow-from', 'client', '-p', '80', 'whoami'), 'web');
  ok(await m('service', 'create', '--name', 'client', '--network', 'app', 'whoami'), 'client');
  ok(await m('service', 'create', '--name', 'rogue', '--network', 'app', 'whoami'), 'rogue');
  web = await waitRunning('web', 2, 2, 60_000);
  const [c] = await tasks('client');
  const [r] = await tasks('rogue');
  assert.ok(c && r, 'client and rogue run');
  client = c;
  rogue = r;
  vip = (JSON.parse(ok(await m('service', 'inspect', 'web', '--format', '{{json .vips}}'), 'vips').stdout) as Record<string, string>).app!;
  assert.ok(vip, 'web has a VIP on app');
});
after(async () => {
  await destroyLab(LAB);
});

describe('policies between services (lab mpol)', { timeout: 240_000 }, () => {
  test('client is answered; rogue is refused at once by every task and through the VIP', async () => {
    for (const target of [vip, ...web.map((t) => t.addresses.app!)]) {
      await waitFor(`client answered by ${target}`, () => {
        const p = probe(client, target);
        return p.code === 0 && p.body.includes('web.') ? p : undefined;
      }, 30_000, 200, () => JSON.stringify(probe(client, target)));
      const denied = await waitFor(`rogue refused by ${target}`, () => {
        const p = probe(rogue, target);
        return p.code === 7 ? p : undefined;
      }, 30_000, 200, () => JSON.stringify(probe(rogue, target)));
      process.stdout.write(`# rogue → ${target}: curl exit ${denied.value.code} (connection refused) in ${denied.value.ms} ms\n`);
      assert.ok(denied.value.ms < 100, `refused in ${denied.value.ms} ms (want < 100)`);
    }
  });

  test('debug trace from the rogue task says "denied by policy of web"', async () => {
    const r = ok(await on(rogue.node!, 'debug', 'trace', '--from', rogue.name, '--to', 'web:80', '--format', 'json'), 'trace');
    const t = JSON.parse(r.stdout) as { denied: boolean; hops: Array<{ hop: string; detail: string; denied?: boolean }> };
    assert.equal(t.denied, true, r.stdout);
    const hops = t.hops.filter((h) => h.hop === 'policy');
    assert.equal(hops.length, 2, r.stdout);
    for (const h of hops) assert.match(h.detail, /denied by policy of web: 10\.\d+\.\d+\.\d+ is not a task of an allowed service \(network app is default-deny and allow-from is client\)/);
    const text = ok(await on(rogue.node!, 'debug', 'trace', '--from', rogue.name, '--to', 'web:80'), 'trace table').stdout;
    assert.match(text, /DENY +policy/);
    const allowed = JSON.parse(ok(await on(client.node!, 'debug', 'trace', '--from', client.name, '--to', 'web:80', '--format', 'json'), 'trace client').stdout) as { denied: boolean; hops: Array<{ hop: string; detail: string }> };
    assert.equal(allowed.denied, false);
    assert.ok(allowed.hops.filter((h) => h.hop === 'policy').every((h) => /allowed by policy of web/.test(h.detail)), JSON.stringify(allowed.hops));
  });

  test('an allow-from update takes effect in place (no task replaced), both ways', async () => {
    const before = (await tasks('web')).map((t) => t.id).sort();
    ok(await on('n1', 'service', 'update', '--allow-from-add', 'rogue', 'web'), 'update add');
    const target = web[0]!.addresses.app!;
    const opened = await waitFor('rogue answered after --allow-from-add rogue', () => {
      const p = probe(rogue, target);
      return p.code === 0 && p.body.includes('web.') ? p : undefined;
    }, 30_000, 200, () => JSON.stringify(probe(rogue, target)));
    process.stdout.write(`# allow-from-add effective after ${opened.ms} ms\n`);
    ok(await on('n1', 'service', 'update', '--allow-from-rm', 'rogue', 'web'), 'update rm');
    await waitFor('rogue refused again after --allow-from-rm rogue', () => {
      const p = probe(rogue, target);
      return p.code === 7 ? p : undefined;
    }, 30_000, 200, () => JSON.stringify(probe(rogue, target)));
    assert.deepEqual((await tasks('web')).map((t) => t.id).sort(), before, 'web kept its tasks');
    assert.equal(probe(client, target).code, 0, 'client still answered');
  });

  test('bad input: an invalid service name in --allow-from is refused with a clear error', async () => {
    const r = await on('n1', 'service', 'update', '--allow-from', 'Bad_Name', 'web');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /allowFrom\.0: must be a service name/);
  });
});
