/**
 * A lab node with its own Docker engine (issue 12: "a node that lacks the image"): a second
 * Debian dockerd with its own socket, exec root, pid file, data root and managed containerd,
 * holding only the images a test gives it (copied with `docker save | docker load` from the
 * main engine — never pulled). The node's agent is pointed at it with `docker.socketPath`
 * (LabUpOptions.nodeConfig).
 *
 * Network: the engine runs in the ROOT network namespace with the same flags as
 * native-scripts/dockerd.sh (--bridge=none --iptables=false --ip6tables=false --ip-masq=false)
 * and also --ip-forward=false: it creates no link, rule or sysctl anywhere, and meshd plumbs
 * every task's namespace itself, so the engine's own namespace does not matter to a task. Not
 * the node's namespace because `lab down` SIGKILLs every process in a lab namespace — it would
 * kill the engine before a test can ask it whether the lab's containers are gone, and leave its
 * mounts behind. Its containers sit under their own cgroup parent, removed at stop.
 *
 * stopNodeEngine runs from `after` hooks (also when a test failed) and at start (a crashed
 * earlier run): TERM (KILL after a bound), unmount what the engine mounted, remove its dirs.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface NodeEngine {
  lab: string;
  node: string;
  /** Engine API socket: give it to the node's agent as docker.socketPath. */
  socket: string;
  /** Socket, exec root, pid file, log (under /run). */
  runDir: string;
  /** Data root: images and container filesystems (vfs). */
  dataRoot: string;
  log: string;
  pid: number;
  cgroupParent: string;
}

export function nodeEngineDirs(lab: string, node: string): Omit<NodeEngine, 'pid'> {
  const runDir = `/run/meshd-lab/${lab}/${node}-docker`;
  return {
    lab, node, runDir, socket: join(runDir, 'docker.sock'), log: join(runDir, 'dockerd.log'),
    dataRoot: `/var/lib/meshd-lab/${lab}/${node}-docker`, cgroupParent: `meshd-lab-${lab}-${node}`,
  };
}

const docker = (socket: string, args: string[], input?: Buffer) =>
  spawnSync('docker', ['-H', `unix://${socket}`, ...args], { input, encoding: 'buffer', timeout: 60_000, maxBuffer: 1 << 30 });

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(no log: ${(e as Error).message})`;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZXx]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/**
 * Starts the engine, waits until it answers (printing its log if it exits or does not), loads
 * `images` into it from the main engine, and checks that `absent` images are NOT in it.
 */
export async function startNodeEngine(lab: string, node: string, images: readonly string[], absent: readonly string[] = [], timeoutMs = 60_000): Promise<NodeEngine> {
  await stopNodeEngine(lab, node);
  const d = nodeEngineDirs(lab, node);
  mkdirSync(d.runDir, { recursive: true });
  mkdirSync(d.dataRoot, { recursive: true });
  // An empty config file: /etc/docker/daemon.json (if any) belongs to the main engine.
  writeFileSync(join(d.runDir, 'daemon.json'), '{}\n');
  const fd = openSync(d.log, 'a');
  const child = spawn('dockerd', [
    '--config-file', join(d.runDir, 'daemon.json'),
    '-H', `unix://${d.socket}`, '--data-root', d.dataRoot, '--exec-root', join(d.runDir, 'exec'), '--pidfile', join(d.runDir, 'dockerd.pid'),
    '--storage-driver=vfs', '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--ip-forward=false',
    '--userland-proxy=false', `--cgroup-parent=${d.cgroupParent}`,
  ], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new Error(`dockerd for ${lab}/${node} did not start (spawn failed); log:\n${tail(d.log)}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = docker(d.socket, ['version', '--format', '{{.Server.Version}}']);
    if (v.status === 0) break;
    if (!alive(pid)) throw new Error(`dockerd for ${lab}/${node} (pid ${pid}) exited before answering on ${d.socket}; last lines of ${d.log}:\n${tail(d.log)}`);
    if (Date.now() > deadline) throw new Error(`dockerd for ${lab}/${node} (pid ${pid}) did not answer on ${d.socket} within ${timeoutMs} ms (last: ${v.stderr.toString().trim()}); log:\n${tail(d.log)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const engine: NodeEngine = { ...d, pid };
  for (const img of images) {
    const saved = spawnSync('docker', ['save', img], { maxBuffer: 1 << 30, timeout: 60_000 });
    if (saved.status !== 0) throw new Error(`docker save ${img} (main engine): ${saved.stderr.toString().trim()}`);
    const loaded = docker(d.socket, ['load', '-q'], saved.stdout);
    if (loaded.status !== 0) throw new Error(`docker load ${img} into ${d.socket}: ${loaded.stderr.toString().trim()}`);
  }
  for (const img of images) if (!hasImage(engine, img)) throw new Error(`${img} is not in the engine of ${node} after docker load`);
  for (const img of absent) if (hasImage(engine, img)) throw new Error(`${img} must not be in the engine of ${node}`);
  return engine;
}

export function hasImage(e: Pick<NodeEngine, 'socket'>, image: string): boolean {
  return docker(e.socket, ['image', 'inspect', image]).status === 0;
}

/** `ID NAME` of every container on the engine (all states). */
export function engineContainers(e: Pick<NodeEngine, 'socket'>): string[] {
  const r = docker(e.socket, ['ps', '-a', '--format', '{{.ID}} {{.Names}} {{.Label "meshd.prefix"}}']);
  if (r.status !== 0) throw new Error(`docker ps on ${e.socket}: ${r.stderr.toString().trim()}`);
  return r.stdout.toString().split('\n').filter(Boolean);
}

/** Mount points at or under `dir` (deepest first), from this process's mount table. */
function mountsUnder(dir: string): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4]?.replace(/\\040/g, ' ');
    if (mp && (mp === dir || mp.startsWith(`${dir}/`))) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/**
 * Stops the engine and removes everything it made; returns what could not be removed (empty
 * when clean). Safe when nothing runs (a crashed earlier run, or called twice).
 */
export async function stopNodeEngine(lab: string, node: string, graceMs = 20_000): Promise<string[]> {
  const d = nodeEngineDirs(lab, node);
  const problems: string[] = [];
  let pid = 0;
  try {
    pid = Number(readFileSync(join(d.runDir, 'dockerd.pid'), 'utf8').trim());
  } catch {
    /* never started, or already cleaned */
  }
  const isOurs = (p: number) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(d.runDir);
    } catch {
      return false;
    }
  };
  if (pid > 0 && alive(pid) && isOurs(pid)) {
    // TERM: dockerd stops its containers and its managed containerd, then exits.
    process.kill(pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    if (alive(pid)) {
      problems.push(`dockerd ${pid} still running ${graceMs} ms after SIGTERM; sent SIGKILL`);
      process.kill(pid, 'SIGKILL');
    }
  }
  // Its managed containerd (and shims) name the exec root on their command line.
  for (const p of readdirSync('/proc').filter((x) => /^\d+$/.test(x)).map(Number)) {
    if (p !== process.pid && isOurs(p) && alive(p)) {
      problems.push(`process ${p} of the engine was left running; killed`);
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const dir of [d.runDir, d.dataRoot]) {
    for (const mp of mountsUnder(dir)) {
      const r = spawnSync('umount', ['-l', mp], { encoding: 'utf8' });
      if (r.status !== 0) problems.push(`umount ${mp}: ${r.stderr.trim()}`);
    }
    try {
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      problems.push(`rm ${dir}: ${(e as Error).message}`);
    }
  }
  for (const parent of [`/run/meshd-lab/${lab}`, `/var/lib/meshd-lab/${lab}`, '/run/meshd-lab', '/var/lib/meshd-lab']) {
    try {
      rmdirSync(parent); // only when empty: another node's engine may still live there
    } catch {
      /* not empty or absent */
    }
  }
  // cgroup v1 (cgroupfs driver): the parent exists in every controller; v2: one directory.
  const cg = '/sys/fs/cgroup';
  const dirs = existsSync(join(cg, 'cgroup.controllers')) ? [join(cg, d.cgroupParent)] : readdirSync(cg).map((c) => join(cg, c, d.cgroupParent));
  for (const dir of dirs) {
    if (!existsSync(dir)) continue;
    try {
      rmdirSync(dir);
    } catch (e) {
      problems.push(`rmdir ${dir}: ${(e as Error).message}`);
    }
  }
  return problems;
}
