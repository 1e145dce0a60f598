/**
 * Host side of the VM harness, shared by the tests that run something inside the IPVS VM
 * (test/integration/lb/ipvs-vm.test.ts, test/integration/lb/ipvs-vm-mesh.test.ts): prepare the VM
 * (native-scripts/vm/prepare.sh), run a command in it (native-scripts/vm/run.sh) while streaming the
 * guest's console to our stdout with a prefix, and report boot and run times.
 *
 * Runs on the host; never imported by code that runs inside the VM.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

/** The repo root (this file is dist/test/vm/harness.js once compiled). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Run {
  code: number | null;
  out: string;
  err: string;
  ms: number;
  readyMs?: number;
}

/** Runs a script from the repo root, streaming its stdout lines to ours prefixed (so CI logs show the VM's progress). */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, limitMs: number, prefix: string): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let readyMs: number | undefined;
    let partial = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      partial += d;
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, i);
        partial = partial.slice(i + 1);
        if (readyMs === undefined && line.startsWith('MESHD-VM-READY')) readyMs = performance.now() - t0;
        process.stdout.write(`${prefix}${line}\n`);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err, ms: performance.now() - t0, ...(readyMs !== undefined ? { readyMs } : {}) });
    });
  });
}

/** The node:test summary lines ("✖ name", "ℹ pass 7") of a run inside the VM. */
export function summary(out: string): string {
  return out
    .split('\n')
    .filter((l) => /^\s*(✔|✖|ℹ (tests|pass|fail|duration_ms))/.test(l))
    .join('\n');
}

/** One line of timings: boot-to-ready (host clock), the command's time (guest clock), total. */
export function timings(vm: Run): string {
  const guestReady = /MESHD-VM-READY uptime=([0-9.]+)/.exec(vm.out)?.[1];
  const guestDone = /MESHD-VM-DONE uptime=([0-9.]+)/.exec(vm.out)?.[1];
  const cmdS = guestReady && guestDone ? (Number(guestDone) - Number(guestReady)).toFixed(1) : '?';
  return `boot-to-ready ${vm.readyMs !== undefined ? (vm.readyMs / 1000).toFixed(1) : '?'} s (host clock; guest uptime ${guestReady ?? '?'} s), ` +
    `suite ${cmdS} s (guest clock), total ${(vm.ms / 1000).toFixed(1)} s; ${vm.err.trim().split('\n').slice(-1)[0] ?? ''}`;
}

/** Newest mtime (ms) and a size+mtime fingerprint of the .js files under dist/src and dist/test. */
function distState(): { newest: number; print: string } {
  let newest = 0;
  const parts: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.js')) {
        const st = statSync(p);
        newest = Math.max(newest, st.mtimeMs);
        parts.push(`${p}:${st.size}:${st.mtimeMs}`);
      }
    }
  };
  for (const sub of ['src', 'test']) walk(join(ROOT, 'dist', sub));
  return { newest, print: parts.join('\n') };
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A private copy of the compiled tree (dist/src, dist/test) for one VM run, under <repo>/.vm/run (so
 * bare imports still resolve to <repo>/node_modules). Why: the guest reads the host's files over 9p
 * with cache=loose, and other builds on this machine rewrite dist/ while a VM test runs for minutes —
 * a guest process then loads a half-written module ("SyntaxError: Unexpected token" in an agent).
 * The copy is taken when dist/ has been quiet for `quietMs` and is kept only if nothing changed while
 * copying (else it retries, up to `limitMs`; then it fails loudly). `rel` turns a repo-relative dist
 * path into the snapshot's; `remove` deletes the copy. `stubs` (package name → ESM source) are written
 * as packages into the snapshot's own node_modules, which Node's resolution finds before the repo's
 * (see LAB_AGENT_STUBS).
 */
export async function snapshotDist(quietMs = 3000, limitMs = 180_000, stubs: Record<string, string> = {}): Promise<{ dir: string; rel: (p: string) => string; remove: () => void }> {
  const dir = join(ROOT, '.vm', 'run', `dist-${process.pid}-${Date.now()}`);
  const deadline = Date.now() + limitMs;
  for (;;) {
    const before = distState();
    if (Date.now() - before.newest >= quietMs) {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(join(dir, 'dist'), { recursive: true });
      for (const sub of ['src', 'test']) cpSync(join(ROOT, 'dist', sub), join(dir, 'dist', sub), { recursive: true, filter: (p) => !p.endsWith('.map') });
      if (distState().print === before.print) break;
    }
    if (Date.now() > deadline) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`dist/ never stayed unchanged for ${quietMs} ms within ${limitMs} ms (a build running in a loop?)`);
    }
    await sleepMs(1000);
  }
  writeStubs(join(dir, 'node_modules'), stubs);
  return {
    dir,
    rel: (p: string) => relative(ROOT, join(dir, p)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Packages that every meshd process imports statically (the agent links the embedded manager:
 * agent/manager-link → manager → store-config → store/etcd → etcd3 → @grpc/grpc-js + protobufjs, and
 * manager → pki/ca → @peculiar/x509 + asn1js) but that a lab agent WITHOUT a manager never calls: no
 * etcd store, no certificates (a lab node has no identity). Under qemu TCG parsing them is most of an
 * agent's start: ~70 % of the bytes it loads, ~0.85 → ~0.45 s CPU natively, tens of seconds in the
 * guest. The IPVS mesh test's snapshot replaces them with these stubs, which fail loudly when used:
 * `new Etcd3()` throws; the x509 namespace is empty, so any call through it throws a TypeError (there is
 * no top-level use). Everything the mesh test exercises (worker, gossip, overlay, LB, DNS, drain) is the
 * real code. The nftables twin of the test runs the agents unstubbed.
 */
export const LAB_AGENT_STUBS: Record<string, string> = {
  'etcd3': 'export class Etcd3 { constructor() { throw new Error("etcd3 is stubbed in the IPVS VM lab (test/vm/harness.ts LAB_AGENT_STUBS): lab agents run no manager store"); } }\n',
  '@peculiar/x509': '// @peculiar/x509 is stubbed in the IPVS VM lab (test/vm/harness.ts LAB_AGENT_STUBS): lab agents have no certificates.\nexport {};\n',
};

/** Writes each stub as node_modules/<name>/{package.json,index.js} (an ESM package) under `dir`. */
function writeStubs(dir: string, stubs: Record<string, string>): void {
  for (const [name, source] of Object.entries(stubs)) {
    const pkg = join(dir, name);
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name, version: '0.0.0-vm-stub', type: 'module', main: 'index.js' }));
    writeFileSync(join(pkg, 'index.js'), source);
  }
}
