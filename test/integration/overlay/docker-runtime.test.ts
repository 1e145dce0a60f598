/**
 * The docker runtime against the shared runtime compliance suite, on Debian's docker.io
 * (started by test/helpers/docker.ts when absent) with images made locally by `docker import`
 * of busybox-static (the task image and a stand-in sandbox image) — never a registry pull.
 */
import { realExec } from '../../../src/adapters/exec.js';
import { DockerRuntime } from '../../../src/adapters/runtime/docker.js';
import { ensureDockerd } from '../../helpers/docker.js';
import { buildSandboxImage } from '../../helpers/sandbox-image.js';
import { IMAGE, buildImage, ncHttpGet, removeContainers } from './docker-image.js';
import { runtimeCompliance } from './runtime-compliance.js';

const PREFIX = 'mtov-rd-';

runtimeCompliance('docker', PREFIX, async (prefix) => {
  if (!(await ensureDockerd())) throw new Error('docker.io is not installed (native-scripts/setup.sh installs it)');
  buildImage();
  const sandboxImage = buildSandboxImage();
  return { runtime: new DockerRuntime({ prefix, exec: realExec, node: 'node-d', image: IMAGE, sandboxImage }), cleanup: () => removeContainers(PREFIX) };
}, {
  node: 'node-d',
  httpGet: ncHttpGet,
  stubbornArgv: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'],
});
