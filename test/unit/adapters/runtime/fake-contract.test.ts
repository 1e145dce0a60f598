/** FakeRuntime keeps the Runtime contract (test/compliance/runtime.ts), so worker unit tests on it mean something. */
import { FakeRuntime } from '../../../../src/adapters/runtime/fake.js';
import { macFromIp } from '../../../../src/core/ipam/addr.js';
import { runtimeContract } from '../../../compliance/runtime.js';

runtimeContract('fake', async () => {
  const rt = new FakeRuntime('fk-');
  return {
    runtime: rt,
    attachment: (i) => ({ sandboxNs: 'fk-sb', bridge: 'br0', ip: `10.95.0.${10 + i}`, prefix: 24, gateway: '10.95.0.1', mac: macFromIp(`10.95.0.${10 + i}`), mtu: 1450 }),
    exiting: (id) => ({ spec: { id, name: `exit.${id}`, builtin: 'whoami' }, trigger: () => rt.exit(id, 3) }),
    shell: false,
    graceMs: 100,
  };
}, { restarts: false });
