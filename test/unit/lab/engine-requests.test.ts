/**
 * The pure parts of stopping a lab's agents (src/lab/engine-requests.ts): reading `ss -xn`, the
 * agents' socket inodes, which engine connections are theirs, what is still open, and when the
 * container sweep is done.
 */
import { after, test } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { engineConnections, labDownSummary, nextSweep, parseUnixSockets, socketInodes, stillOpen, sweepLabContainers, SWEEP_ROUNDS } from '../../../src/lab/engine-requests.js';
import { MeshError } from '../../../src/core/errors.js';
import type { Exec, ExecResult } from '../../../src/adapters/exec.js';
import { labContainerIds } from '../../../src/lab/containers.js';

/** `ss -xnpH` as read on this machine: an in-flight create (engine side 18724628 held by dockerd, client 18723391), a listener, garbage. */
const SS = [
  'u_str ESTAB 0      0                                               * 18693411 * 18694879 users:(("node",pid=700,fd=3))',
  'u_str ESTAB 0      0                            /var/run/docker.sock 18724628            * 18723391 users:(("dockerd",pid=9273,fd=31))',
  'u_str LISTEN 0     4096                         /var/run/docker.sock 17000001            * 0 users:(("dockerd",pid=9273,fd=5),("docker init",pid=1,fd=9))',
  'u_str ESTAB 0      0                    /run/meshd/a b/docker.sock 18724700            * 18723400 users:(("dockerd",pid=9300,fd=40))',
  'u_str ESTAB 0      0                            /var/run/docker.sock 18724800            * 18723500',
  'Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port Process',
  '',
  'u_str ESTAB 0 0 /var/run/docker.sock x * 1',
].join('\n');

test('parseUnixSockets: path, inode, peer and holders; a path with a space; a process name with a space; headers and garbage skipped', () => {
  assert.deepEqual(parseUnixSockets(SS), [
    { path: '*', inode: 18693411, peer: 18694879, owners: [{ pid: 700, fd: 3 }] },
    { path: '/var/run/docker.sock', inode: 18724628, peer: 18723391, owners: [{ pid: 9273, fd: 31 }] },
    { path: '/var/run/docker.sock', inode: 17000001, peer: 0, owners: [{ pid: 9273, fd: 5 }, { pid: 1, fd: 9 }] },
    { path: '/run/meshd/a b/docker.sock', inode: 18724700, peer: 18723400, owners: [{ pid: 9300, fd: 40 }] },
    { path: '/var/run/docker.sock', inode: 18724800, peer: 18723500, owners: [] },
  ]);
  assert.deepEqual(parseUnixSockets(''), []);
});

test('socketInodes: only socket links', () => {
  assert.deepEqual(socketInodes(['socket:[18723389]', '/dev/null', 'pipe:[5]', 'anon_inode:[eventpoll]', 'socket:[18723391]', 'socket:[x]']), [18723389, 18723391]);
});

test('engineConnections: the engine side of the agents\' connections to the lab\'s engines only', () => {
  const rows = parseUnixSockets(SS);
  const docker = { inode: 18724628, owners: [{ pid: 9273, fd: 31 }] };
  assert.deepEqual(engineConnections(rows, ['/var/run/docker.sock'], [18723391, 18694879]), { sockets: [docker], unaccepted: 0 });
  assert.deepEqual(engineConnections(rows, ['/var/run/docker.sock', '/run/meshd/a b/docker.sock'], [18723391, 18723400]),
    { sockets: [docker, { inode: 18724700, owners: [{ pid: 9300, fd: 40 }] }], unaccepted: 0 });
  assert.deepEqual(engineConnections(rows, ['/other.sock'], [18723391]), { sockets: [], unaccepted: 0 }, 'another engine');
  assert.deepEqual(engineConnections(rows, ['/var/run/docker.sock'], [42]), { sockets: [], unaccepted: 0 }, 'someone else\'s connection');
  assert.deepEqual(engineConnections(rows, ['/var/run/docker.sock'], [18723500]), { sockets: [], unaccepted: 1 }, 'no holder yet (not accepted): counted, not followed');
  const pending = parseUnixSockets('u_str ESTAB 0 0 /var/run/docker.sock 0 * 555 users:(("dockerd",pid=1,fd=2))');
  assert.deepEqual(engineConnections(pending, ['/var/run/docker.sock'], [555]), { sockets: [], unaccepted: 1 }, 'inode 0: counted, not followed');
});

test('stillOpen: open while a holder\'s fd still names the socket; a closed fd, a reused fd number or a gone process is closed', () => {
  const s = [{ inode: 18724628, owners: [{ pid: 9273, fd: 31 }] }, { inode: 18724700, owners: [{ pid: 9300, fd: 40 }] }];
  const fds = new Map<string, string>([['9273/31', 'socket:[18724628]'], ['9300/40', 'socket:[99]']]);
  assert.deepEqual(stillOpen(s, (pid, fd) => fds.get(`${pid}/${fd}`)), [s[0]]);
  assert.deepEqual(stillOpen(s, () => undefined), []);
});

test('nextSweep: done on an empty listing; again after a removal; give up after the last round', () => {
  assert.equal(nextSweep(1, 0, 3), 'done');
  assert.equal(nextSweep(1, 2, 3), 'again');
  assert.equal(nextSweep(2, 1, 3), 'again');
  assert.equal(nextSweep(3, 1, 3), 'give-up');
  assert.equal(nextSweep(3, 0, 3), 'done');
});

test('labContainerIds: by label or by name; a container without the label is found by its name', () => {
  const out = ['aaa mlab-web-n1- mlab-web-n1-s-t1', 'bbb  mlab-web-n2-c-t2', 'ccc mlab-webx-n1- mlab-webx-n1-c-t3', 'ddd  other', 'eee meshd- mlab-web'].join('\n');
  assert.deepEqual(labContainerIds(out, 'web'), ['aaa', 'bbb']);
});

test('labDownSummary: what the teardown waited on, only when it killed agents', () => {
  const agents = { killed: 2, deathMs: 14, engineRequests: 1, engineMs: 446, problems: [] };
  assert.equal(labDownSummary('x', { namespaces: 4, processes: 2, containers: 1, agents }),
    'removed lab x: 4 namespaces, 2 processes, 1 containers; agents dead 14 ms after SIGKILL, 1 engine request(s) of theirs finished 446 ms later');
  assert.equal(labDownSummary('x', { namespaces: 0, processes: 0, containers: 1, agents: { ...agents, killed: 0 } }), 'removed lab x: 0 namespaces, 0 processes, 1 containers');
});

/** An Exec whose `docker ps` answers the next of `listings` (the last one again when they run out). */
function engine(listings: string[]): Exec & { rms: string[][] } {
  const rms: string[][] = [];
  let i = 0;
  const run = async (_cmd: string, args: readonly string[]): Promise<ExecResult> => {
    if (args[2] === 'ps') return { code: 0, stdout: listings[Math.min(i++, listings.length - 1)]!, stderr: '' };
    rms.push(args.slice(2));
    return { code: 0, stdout: '', stderr: '' };
  };
  return { rms, run, check: async (c, a) => (await run(c, a)).stdout };
}

const dir = mkdtempSync(join(tmpdir(), 'meshd-sweep-'));
const sock = join(dir, 'docker.sock');
writeFileSync(sock, '');
after(() => rmSync(dir, { recursive: true, force: true }));

test('sweepLabContainers: lists again after a removal, until a listing is empty', async () => {
  // the second listing shows a container whose create ended meanwhile
  const ex = engine(['a1 mlab-lab-n1- mlab-lab-n1-s-t1\n', 'a2 mlab-lab-n2- mlab-lab-n2-c-t2\nzz mlab-other-n1- mlab-other-n1-c-t\n', '']);
  assert.deepEqual(await sweepLabContainers(ex, 'lab', [sock]), { removed: 2, rounds: 3 });
  assert.deepEqual(ex.rms, [['rm', '-f', '-v', 'a1'], ['rm', '-f', '-v', 'a2']]);
  const quiet = engine(['']);
  assert.deepEqual(await sweepLabContainers(quiet, 'lab', [sock]), { removed: 0, rounds: 1 }, 'nothing to remove: one listing');
});

test('sweepLabContainers: containers that keep appearing are an error, not a clean teardown', async () => {
  const ex = engine(['a1 mlab-lab-n1- mlab-lab-n1-s-t1\n']);
  await assert.rejects(sweepLabContainers(ex, 'lab', [sock]), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_EXEC_FAILED' && e.message.includes('kept appearing'));
  assert.equal(ex.rms.length, SWEEP_ROUNDS);
});
