/**
 * NetnsRuntime and DockerRuntime against the shared Runtime contract (test/compliance/runtime.ts;
 * the fake runs it as a unit test). Each gets its own sandbox namespace with a bridge (prefixes
 * `mwkc-` and `mwkd-`, unique to this file), removed with every task namespace and container of
 * that prefix before and after, also when a test fails. Docker: Debian's docker.io (started by
 * test/helpers/docker.ts when absent) and a busybox image made by `docker import` — never pulled.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realExec } from '../../../src/adapters/exec.js';
import { DockerRuntime } from '../../../src/adapters/runtime/docker.js';
import { NetnsRuntime } from '../../../src/adapters/runtime/netns.js';
import type { Attachment } from '../../../src/adapters/runtime/types.js';
import { macFromIp } from '../../../src/core/ipam/addr.js';
import { runtimeContract } from '../../compliance/runtime.js';
import { ensureDockerd } from '../../helpers/docker.js';
import { buildSandboxImage } from '../../helpers/sandbox-image.js';
import { IMAGE, buildImage, removeContainers } from '../overlay/docker-image.js';
import { cleanupPrefix } from '../overlay/lab.js';

/** A sandbox namespace `<prefix>sb` holding bridge br0 at 10.95.0.1/24 (the overlay's shape, without VXLAN). */
async function sandbox(prefix: string): Promise<(i: number) => Attachment> {
  await cleanupPrefix(prefix);
  const ns = `${prefix}sb`;
  await realExec.check('ip', ['netns', 'add', ns]);
  await realExec.check('ip', ['-n', ns, '-batch', '-'], { input: 'link set lo up\nlink add br0 type bridge\nlink set br0 mtu 1450 up\naddr add 10.95.0.1/24 dev br0\n' });
  return (i) => ({ sandboxNs: ns, bridge: 'br0', ip: `10.95.0.${10 + i}`, prefix: 24, gateway: '10.95.0.1', mac: macFromIp(`10.95.0.${10 + i}`), mtu: 1450 });
}

const exitArgv = (delayS: number): string[] => ['sh', '-c', `sleep ${delayS}; exit 3`];

runtimeContract('netns', async () => {
  const prefix = 'mwkc-';
  const logDir = mkdtempSync(join(tmpdir(), 'mwkc-logs-'));
  const attachment = await sandbox(prefix);
  const make = () => new NetnsRuntime({ prefix, exec: realExec, node: 'wk-a', logDir });
  return {
    runtime: make(), attachment, shell: true, graceMs: 2000,
    exiting: (id) => ({ spec: { id, name: `exit.${id}`, argv: exitArgv(0.3) } }),
    fresh: async () => make(),
    cleanup: async () => {
      await cleanupPrefix(prefix);
      rmSync(logDir, { recursive: true, force: true });
    },
  };
}, { restarts: true });

runtimeContract('docker', async () => {
  const prefix = 'mwkd-';
  if (!(await ensureDockerd())) throw new Error('docker.io is not installed (native-scripts/setup.sh installs it)');
  buildImage();
  const sandboxImage = buildSandboxImage();
  await removeContainers(prefix);
  const attachment = await sandbox(prefix);
  const make = () => new DockerRuntime({ prefix, exec: realExec, node: 'wk-d', image: IMAGE, sandboxImage });
  const rt = make();
  return {
    runtime: rt, attachment, shell: true, graceMs: 2000,
    exiting: (id) => ({ spec: { id, name: `exit.${id}`, argv: exitArgv(1) } }),
    exitsReady: () => rt.eventsOpened(),
    fresh: async () => make(),
    cleanup: async () => {
      await removeContainers(prefix);
      await cleanupPrefix(prefix);
    },
  };
}, { restarts: true });
