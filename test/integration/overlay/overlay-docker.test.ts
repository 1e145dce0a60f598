/**
 * Acceptance: two Docker containers on two namespace hosts reach each other across the
 * overlay (ICMP and HTTP), plumbed by meshd exactly like netns tasks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realExec } from '../../../src/adapters/exec.js';
import { DockerRuntime } from '../../../src/adapters/runtime/docker.js';
import type { OverlayNetwork } from '../../../src/core/overlay/model.js';
import { ensureDockerd } from '../../helpers/docker.js';
import { buildSandboxImage } from '../../helpers/sandbox-image.js';
import { IMAGE, buildImage, ncHttpGet, removeContainers } from './docker-image.js';
import { attachment, endpoint, makeNode, type Node } from './helpers.js';
import { type Lab, labUp, listNetns } from './lab.js';
import { until } from '../../helpers/until.js';

const PREFIX = 'mtov-j-';
const N: OverlayNetwork = { id: 'dddd0001', name: 'web', vni: 4111, subnet: '10.95.1.0/24', gateway: '10.95.1.1' };

describe('overlay with docker containers on two hosts', { timeout: 120_000 }, () => {
  let lab: Lab;
  let nodes: Node[];
  let rts: DockerRuntime[];
  const ip = (i: number): string => `10.95.1.${21 + i}`;

  before(async () => {
    if (!(await ensureDockerd())) throw new Error('docker.io is not installed (native-scripts/setup.sh installs it)');
    buildImage();
    buildSandboxImage(); // the agents' default sandbox image (a stand-in when setup did not make it)
    lab = await labUp(PREFIX, 2, [], 215);
    nodes = lab.hosts.map((h) => makeNode(PREFIX, h));
    rts = nodes.map((n) => new DockerRuntime({ prefix: n.config.prefix, exec: realExec, node: n.host.name, image: IMAGE }));
    const remote = nodes.map((n, i) => endpoint(N, ip(i), n));
    const members = lab.hosts.map((h) => h.ip);
    for (const n of nodes) await n.overlay().reconcile({ networks: [N], remote, members });
    for (const [i, rt] of rts.entries()) await rt.start({ id: `d${i}`, name: `web.${i}`, builtin: 'whoami' }, [attachment(nodes[i]!, N, ip(i))]);
  });

  after(async () => {
    for (const n of nodes ?? []) await removeContainers(n.config.prefix);
    if (lab) await lab.teardown();
    assert.deepEqual((await listNetns()).filter((x) => x.startsWith(PREFIX)), []);
  });

  test('containers reach each other across hosts by IP (ICMP and HTTP)', async () => {
    assert.equal((await rts[0]!.exec('d0', ['ping', '-c', '1', '-W', '2', ip(1)])).code, 0);
    assert.equal((await rts[1]!.exec('d1', ['ping', '-c', '1', '-W', '2', ip(0)])).code, 0);
    const body = await until(`whoami on ${ip(1)} answering d0`, async () => (await rts[0]!.exec('d0', ncHttpGet(`http://${ip(1)}/`))).stdout, 5000);
    assert.equal(body, `task: web.1\nip: ${ip(1)}\nnode: h2\n`);
  });

  test('stopping the containers removes their namespaces and veths', async () => {
    for (const [i, rt] of rts.entries()) await rt.stop(`d${i}`, 2000);
    const names = await listNetns();
    for (const n of nodes) assert.equal(names.some((x) => x.startsWith(`${n.config.prefix}t-`)), false);
    for (const rt of rts) assert.deepEqual(await rt.list(), []);
  });
});
