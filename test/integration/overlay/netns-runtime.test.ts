/** The netns runtime against the shared runtime compliance suite. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realExec } from '../../../src/adapters/exec.js';
import { NetnsRuntime } from '../../../src/adapters/runtime/netns.js';
import { runtimeCompliance } from './runtime-compliance.js';

const logDir = mkdtempSync(join(tmpdir(), 'mtov-rc-logs-'));

runtimeCompliance('netns', 'mtov-rc-', async (prefix) => ({
  runtime: new NetnsRuntime({ prefix, exec: realExec, node: 'node-a', logDir }),
  cleanup: async () => rmSync(logDir, { recursive: true, force: true }),
}), { node: 'node-a' });
