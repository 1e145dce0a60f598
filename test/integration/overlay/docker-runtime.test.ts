/**
 * The docker runtime against the shared runtime compliance suite, on Debian's docker.io
 * (started by test/helpers/docker.ts when absent) with an image made locally by
 * `docker import` of busybox-static — never a registry pull.
 */
import { realExec } from '../../../src/adapters/exec.js';
import { DockerRuntime } from '../../../src/adapters/runtime/docker.js';
import { ensureDockerd } from '../../helpers/docker.js';
import { IMAGE, buildImage, ncHttpGet, removeContainers } from './docker-image.js';
import { runtimeCompliance } from './runtime-compliance.js';

const PREFIX = 'mtov-rd-';

runtimeCompliance('docker', PREFIX, async (prefix) => {
  if (!(await ensureDockerd())) throw new Error('docker.io is not installed (native-scripts/setup.sh installs it)');
  buildImage();
  return { runtime: new DockerRuntime({ prefix, exec: realExec, node: 'node-d', image: IMAGE }), cleanup: () => removeContainers(PREFIX) };
}, {
  node: 'node-d',
  httpGet: ncHttpGet,
  stubbornArgv: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'],
});
