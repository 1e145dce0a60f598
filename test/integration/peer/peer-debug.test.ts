/**
 * Issue 16 §1: cross-node debugging without the lab. netctl gets ONLY n1's socket (-H), run in a
 * private mount namespace where /run/meshd is an empty tmpfs (so no lab socket of any node can be
 * found): `debug trace`, `debug lb/dns --node`, `service logs` and `exec` reach n2 and n3 through
 * n1's agent and its peer API (agent to agent, mTLS with the node certificates of the cluster).
 * The peer API refuses a certificate of another CA (and none at all), a worker asking for
 * exec/logs, and unlisted routes; a node whose peer port is closed is a hop marked unreachable.
 * Last (it removes n3): after `node rm --force n3` n1's peer API refuses n3's certificate within
 * the revocation refresh bound (agents fetch the manager's list every 30 s), and n3's agent
 * cannot ask n1 either; n2 is still served.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NETCTL, inNs, netctl, ok, type CliResult } from '../../helpers/cli.js';
import { agentClient, createLab, destroyLab, joinLabCluster, waitFor } from '../../helpers/lab.js';
import type { LabState } from '../../../src/lab/lab.js';
import { CertificateAuthority } from '../../../src/adapters/pki/ca.js';
import { createNodeKeyAndCsr } from '../../../src/adapters/pki/crypto.js';
import { MeshError } from '../../../src/core/errors.js';

const LAB = 'mp16';
const PEER_PORT = 2378;
let lab: LabState;
const tmp = mkdtempSync(join(tmpdir(), 'mp16-'));
const n1Sock = join(tmp, 'n1.sock');
const on = (node: string, ...args: string[]) => netctl(['--lab', LAB, '--node', node, ...args]);
const ns = (node: string) => lab.nodes.find((n) => n.name === node)!.netns;
const clusterDir = (node: string) => `/run/meshd/${LAB}/${node}/data/cluster`;
interface Hop { hop: string; where: string; detail: string; ok: boolean }

/**
 * netctl with only n1's socket: in its own mount namespace n1's socket is bind-mounted to a path
 * outside /run/meshd, then an empty tmpfs hides /run/meshd (every lab socket, the default socket).
 */
function hidden(args: string[], withHost = true): Promise<CliResult> {
  const script = 'mount --bind "$1" "$2" && mount -t tmpfs mp16hide /run/meshd && shift 2 && exec "$@"';
  const env = { ...process.env };
  delete env.MESHD_HOST;
  return new Promise((resolve) => {
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', lab.nodes[0]!.socket, n1Sock, process.execPath, NETCTL, ...(withHost ? ['-H', `unix://${n1Sock}`] : []), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code: code ?? 128, stdout, stderr });
    });
  });
}

/** curl inside a lab namespace against a peer API; `-w` appends the HTTP status (000: no answer). */
function curl(fromNode: string, args: string[], url: string): { status: string; body: string; code: number; stderr: string } {
  const r = inNs(ns(fromNode), ['curl', '-sS', '-m', '5', '-w', '\n%{http_code}', ...args, url]);
  const cut = r.stdout.lastIndexOf('\n');
  return { status: r.stdout.slice(cut + 1), body: r.stdout.slice(0, Math.max(0, cut)), code: r.code, stderr: r.stderr };
}
const nodeCert = (node: string) => ['--cacert', `${clusterDir(node)}/ca.crt`, '--cert', `${clusterDir(node)}/node.crt`, '--key', `${clusterDir(node)}/node.key`];

before(async () => {
  writeFileSync(n1Sock, '');
  lab = await createLab({ name: LAB, nodes: 3 });
  await joinLabCluster(lab, join(tmp, 'worker.token'), { json: false, timeoutMs: 120_000 });
  ok(await on('n1', 'network', 'create', '-d', 'overlay', 'app'), 'network create');
  ok(await on('n1', 'service', 'create', '--name', 'web', '--replicas', '3', '-p', '8080:80', '--network', 'app', 'whoami'), 'create web');
  ok(await on('n1', 'service', 'create', '--name', 'talk', '--mode', 'global', '--runtime', 'netns', '--network', 'app', 'busybox', 'sh', '-c', 'echo talk-line-one; exec sleep 3600'), 'create talk');
  await waitFor('every node serves its peer API', async () => {
    const st = await Promise.all(['n1', 'n2', 'n3'].map((n) => agentClient(lab, n).call<{ serving: boolean }>('GET', '/v1/peers')));
    return st.every((s) => s.serving) ? st : undefined;
  }, 30_000, 200);
  await waitFor('the mesh answers on n3', () => spawnSync('ip', ['netns', 'exec', lab.client.netns, 'curl', '-s', '-m', '2', 'http://10.99.1.3:8080/'], { encoding: 'utf8' }).stdout.includes('task: web.'), 60_000, 500);
});
after(async () => {
  await destroyLab(LAB);
  rmSync(tmp, { recursive: true, force: true });
});

test('the hidden netctl cannot find any lab socket (the proof below needs that)', async () => {
  const r = await hidden(['--lab', LAB, '--node', 'n2', 'info'], false);
  assert.notEqual(r.code, 0, r.stdout);
  assert.match(r.stderr, /cannot reach the agent at \/run\/meshd\/mp16\/n2\.sock/);
  const info = JSON.parse(ok(await hidden(['info', '--format', 'json']), 'info via -H').stdout) as { node: string };
  assert.equal(info.node, 'n1');
});

async function traceJson(to: string): Promise<{ drift: boolean; hops: Hop[] }> {
  return JSON.parse(ok(await hidden(['debug', 'trace', '--to', to, '--format', 'json']), `trace ${to}`).stdout) as { drift: boolean; hops: Hop[] };
}

test('debug trace --to n3:8080 (and --to 10.99.1.3:8080) walks hops on n1, n2 and n3 through n1', async () => {
  let last = '';
  const t = await waitFor('a consistent path over all 3 web tasks', async () => {
    const x = await traceJson('n3:8080');
    last = JSON.stringify(x);
    const backends = x.hops.find((h) => h.hop === 'backends')?.detail ?? '';
    return !x.drift && (backends.match(/10\.255\.\d+\.\d+:80/g) ?? []).length === 3 ? x : undefined;
  }, 90_000, 500).catch((e: Error) => {
    throw new Error(`${e.message}\nlast trace: ${last}`);
  });
  const hops = t.value.hops;
  assert.equal(hops[0]!.hop, 'published port');
  assert.equal(hops[0]!.where, 'n3');
  assert.deepEqual(hops.filter((h) => h.hop === 'task').map((h) => h.where).sort(), ['n1', 'n2', 'n3'], last);
  for (const p of hops.filter((h) => h.hop === 'vxlan' && /VXLAN peer/.test(h.detail))) assert.match(p.detail, /VXLAN peer 10\.99\.1\.[12] \(n[12]\)/);
  const byAddr = await traceJson('10.99.1.3:8080');
  assert.equal(byAddr.hops[0]!.where, 'n3');
  assert.deepEqual(byAddr.hops.map((h) => `${h.hop}@${h.where}`), hops.map((h) => `${h.hop}@${h.where}`));
});

test('debug lb --node n3 and debug dns --node n2 answer for those nodes', async () => {
  const lb = JSON.parse(ok(await hidden(['--node', 'n3', 'debug', 'lb', '--format', 'json']), 'debug lb --node n3').stdout) as { node: string; namespaces: Array<{ kind: string }> };
  assert.equal(lb.node, 'n3');
  assert.ok(lb.namespaces.some((n) => n.kind === 'ingress'), JSON.stringify(lb));
  const dns = await waitFor('n2 resolves web', async () => {
    const r = JSON.parse(ok(await hidden(['--node', 'n2', 'debug', 'dns', 'web', '--format', 'json']), 'debug dns --node n2').stdout) as { node: string; outcome: string; records: unknown[] };
    return r.outcome === 'answer' ? r : undefined;
  }, 30_000, 500);
  assert.equal(dns.value.node, 'n2');
  const byAddr = JSON.parse(ok(await hidden(['--node', '10.99.1.2', 'debug', 'dns', 'web', '--format', 'json']), 'debug dns --node 10.99.1.2').stdout) as { node: string };
  assert.equal(byAddr.node, 'n2');
  const table = ok(await hidden(['--node', 'n3', 'debug', 'lb']), 'debug lb table').stdout;
  assert.match(table, /^node n3: /);
});

test('service logs reads every node\'s task through n1; exec TASK finds the node itself', async () => {
  const r = await waitFor('logs of talk on n1, n2 and n3', async () => {
    const x = await hidden(['service', 'logs', 'talk']);
    return x.code === 0 && ['n1', 'n2', 'n3'].every((n) => new RegExp(`^talk\\.\\S+@${n} +\\| talk-line-one$`, 'm').test(x.stdout)) ? x : undefined;
  }, 30_000, 500);
  assert.equal(r.value.stderr, '');
  const tasks = await agentClient(lab, 'n1').call<Array<{ id: string; name: string; node: string | null; state: string }>>('GET', '/v1/manager/tasks?service=web');
  const remote = tasks.find((t) => t.node === 'n3' && t.state === 'running');
  assert.ok(remote, JSON.stringify(tasks));
  const x = ok(await hidden(['exec', remote.id, '--', 'echo', 'peer-exec-ok']), 'exec on n3 without --node');
  assert.equal(x.stdout, 'peer-exec-ok\n');
});

test('a node whose peer port is closed is a hop marked unreachable, not a crash', async () => {
  const nft = (script: string) => spawnSync('ip', ['netns', 'exec', ns('n2'), 'nft', '-f', '-'], { input: script, encoding: 'utf8' });
  const add = nft(`table inet mp16blk {\n  chain in {\n    type filter hook input priority 0;\n    tcp dport ${PEER_PORT} reject with tcp reset\n  }\n}\n`);
  assert.equal(add.status, 0, add.stderr);
  try {
    const t = await traceJson('n3:8080');
    const n2 = t.hops.find((h) => h.hop === 'task' && h.where === 'n2');
    assert.ok(n2, JSON.stringify(t.hops));
    assert.equal(n2.ok, false);
    assert.match(n2.detail, /unreachable: cannot reach node n2 at 10\.99\.1\.2:2378: (ECONNREFUSED|ECONNRESET)/);
    assert.ok(t.hops.filter((h) => h.hop === 'task' && h.where !== 'n2').every((h) => h.ok), JSON.stringify(t.hops));
    const lb = await hidden(['--node', 'n2', 'debug', 'lb']);
    assert.equal(lb.code, 6, lb.stderr);
    assert.match(lb.stderr, /^netctl: cannot reach node n2 at 10\.99\.1\.2:2378/);
  } finally {
    const del = nft('delete table inet mp16blk\n');
    assert.equal(del.status, 0, del.stderr);
  }
});

test('the peer API refuses a certificate of another CA, and none at all', async () => {
  const now = new Date();
  const ca = await CertificateAuthority.create({ now, name: 'not-this-cluster' });
  const { keyPem, csrPem } = await createNodeKeyAndCsr('intruder');
  const cert = await ca.issue({ csrPem, nodeId: 'intruder', role: 'manager', sans: ['10.99.1.1'], now });
  writeFileSync(join(tmp, 'foreign.crt'), cert.certPem);
  writeFileSync(join(tmp, 'foreign.key'), keyPem, { mode: 0o600 });
  // Positive control: n1's own certificate is served (and n3's certificate matches its address).
  const good = curl('n1', nodeCert('n1'), `https://10.99.1.3:${PEER_PORT}/v1/info`);
  assert.equal(good.status, '200', good.stderr);
  assert.equal((JSON.parse(good.body) as { node: string }).node, 'n3');
  const foreign = curl('n1', ['-k', '--cert', join(tmp, 'foreign.crt'), '--key', join(tmp, 'foreign.key')], `https://10.99.1.3:${PEER_PORT}/v1/info`);
  assert.equal(foreign.status, '000', `refused in the TLS handshake, no HTTP answer: ${foreign.body}`);
  assert.notEqual(foreign.code, 0);
  const none = curl('n1', ['-k'], `https://10.99.1.3:${PEER_PORT}/v1/tasks`);
  assert.equal(none.status, '000', none.body);
  // An allowlisted path only: a cluster manager's certificate does not open the control API's writes.
  const write = curl('n1', [...nodeCert('n1'), '-X', 'PUT', '-H', 'content-type: application/json', '-d', '[]'], `https://10.99.1.3:${PEER_PORT}/v1/assignments`);
  assert.equal(write.status, '403', write.body);
  assert.equal((JSON.parse(write.body) as { code: string }).code, 'MESHD_FORBIDDEN');
});

test('a worker\'s certificate reads debug views but is refused exec and logs on other nodes', async () => {
  const tasks = await agentClient(lab, 'n1').call<Array<{ id: string; node: string | null; state: string }>>('GET', '/v1/manager/tasks?service=talk');
  const onN3 = tasks.find((t) => t.node === 'n3' && t.state === 'running')!;
  assert.ok(onN3, JSON.stringify(tasks));
  const base = `https://10.99.1.3:${PEER_PORT}`;
  assert.equal(curl('n2', nodeCert('n2'), `${base}/v1/lb/status`).status, '200');
  for (const [what, args, path] of [
    ['logs', [], `/v1/tasks/${onN3.id}/logs`],
    ['exec', ['-X', 'POST', '-H', 'content-type: application/json', '-d', '{"argv":["true"]}'], `/v1/tasks/${onN3.id}/exec`],
  ] as const) {
    const r = curl('n2', [...nodeCert('n2'), ...args], `${base}${path}`);
    assert.equal(r.status, '403', `${what}: ${r.body}`);
    const e = JSON.parse(r.body) as { code: string; message: string };
    assert.equal(e.code, 'MESHD_FORBIDDEN');
    assert.match(e.message, /is for managers; node \S+ is a worker/);
  }
  // The same through n2's agent, as netctl on a worker node would ask.
  const viaAgent = await netctl(['-H', `unix://${lab.nodes[1]!.socket}`, '--node', 'n3', 'exec', onN3.id, '--', 'true']);
  assert.equal(viaAgent.code, 4, viaAgent.stderr);
  assert.match(viaAgent.stderr, /is for managers; node \S+ is a worker/);
});

interface PeerStatus { revocations: { fetchedAt: string | null; refreshMs: number; nodes: string[]; lastError: string | null; selfRevoked: boolean } }

test('node rm --force n3: n1\'s peer API refuses n3\'s certificate within the refresh bound; n3 cannot ask n1 either', async () => {
  const n1Info = `https://10.99.1.1:${PEER_PORT}/v1/info`;
  // Positive controls: n1 has fetched a list (so a refusal below is the list's doing), and serves n3 now.
  const st = await waitFor('n1 has fetched the revocation list', async () => {
    const s = await agentClient(lab, 'n1').call<PeerStatus>('GET', '/v1/peers');
    return s.revocations.fetchedAt ? s.revocations : undefined;
  }, 30_000, 200);
  console.log(`n1 revocations before node rm: ${JSON.stringify(st.value)}`);
  const before = curl('n3', nodeCert('n3'), n1Info);
  assert.equal(before.status, '200', `${before.body}${before.stderr}`);
  const n3Id = (await agentClient(lab, 'n3').call<{ nodeId: string }>('GET', '/v1/cluster')).nodeId;
  ok(await on('n1', 'node', 'rm', '--force', 'n3'), 'node rm --force n3');
  const removedAt = Date.now();
  // Bound: one refresh period, plus the time one fetch and one curl take on a busy 2-core machine.
  const bound = st.value.refreshMs + 10_000;
  let last = '';
  const refused = await waitFor(`n1's peer API to refuse n3's certificate (bound ${bound} ms)`, () => {
    const r = curl('n3', nodeCert('n3'), n1Info);
    last = `HTTP ${r.status} ${r.body}${r.stderr}`;
    return r.status === '403' ? r : undefined;
  }, bound, 500).catch((e: Error) => {
    throw new Error(`${e.message}\nlast curl: ${last}`);
  });
  console.log(`n3's certificate refused by n1 ${Date.now() - removedAt} ms after node rm: ${refused.value.body}`);
  const e = JSON.parse(refused.value.body) as { code: string; details?: { reason?: string; nodeId?: string } };
  assert.equal(e.code, 'MESHD_CERT_REJECTED');
  assert.equal(e.details?.reason, 'revoked');
  assert.equal(e.details?.nodeId, n3Id);
  const n1St = await agentClient(lab, 'n1').call<PeerStatus>('GET', '/v1/peers');
  assert.ok(n1St.revocations.nodes.includes(n3Id), JSON.stringify(n1St.revocations));
  // n3's agent asking n1 (as netctl on n3 would) is refused, in one of two ways that both hold the line:
  // by n1 or by n3 itself (its certificate revoked: MESHD_CERT_REJECTED, 403), or — since `node rm` also
  // rotates the gossip key (issue 16 item 4) and cuts n3 out of the membership — n3 no longer sees n1 alive
  // at all (MESHD_PEER_UNREACHABLE, 503, "dead in n3's gossip membership"). Which comes first is a race
  // between the revocation refresh and the rotation; neither lets n3 through.
  const viaN3 = await agentClient(lab, 'n3').call('GET', '/v1/peers/n1/v1/info').then((v) => ({ answered: v }), (err: unknown) => err as MeshError);
  console.log(`n3's agent asking n1: ${viaN3 instanceof MeshError ? `${viaN3.code} ${viaN3.status}: ${viaN3.message}` : JSON.stringify(viaN3)}`);
  assert.ok(viaN3 instanceof MeshError, JSON.stringify(viaN3));
  const refusedBy = `${viaN3.code} ${viaN3.status}`;
  assert.ok(refusedBy === 'MESHD_CERT_REJECTED 403' || (refusedBy === 'MESHD_PEER_UNREACHABLE 503' && /dead in n3's gossip membership/.test(viaN3.message)), `${refusedBy}: ${viaN3.message}`);
  // Only n3 is cut off: n2's certificate is still served by n1.
  const n2 = curl('n2', nodeCert('n2'), n1Info);
  assert.equal(n2.status, '200', `${n2.body}${n2.stderr}`);
});
