/** The netns runtime against the shared runtime compliance suite. */
import { realExec } from '../../../src/adapters/exec.js';
import { NetnsRuntime } from '../../../src/adapters/runtime/netns.js';
import { runtimeCompliance } from './runtime-compliance.js';

runtimeCompliance('netns', 'mtov-rc-', async (prefix) => ({ runtime: new NetnsRuntime({ prefix, exec: realExec, node: 'node-a' }) }), { node: 'node-a' });
