/**
 * `netctl lab up --cluster`: make a lab a cluster the way a person would — `cluster init`
 * on n1, then every other node joins with the worker token (passed in the request body
 * over the local agent sockets, never on a command line).
 */
import { ApiClient } from '../adapters/api/client.js';
import { MeshError } from '../core/errors.js';
import type { LabState } from './lab.js';

export async function labInitCluster(state: LabState, onProgress: (m: string) => void = () => undefined): Promise<{ manager: string }> {
  const [first, ...rest] = state.nodes;
  if (!first) throw new MeshError('MESHD_BAD_ARGUMENT', `lab ${state.name} has no nodes`);
  const agent = (socketPath: string) => new ApiClient({ socketPath, timeoutMs: 30_000 });
  const init = await agent(first.socket).call<{ managerAddr: string }>('POST', '/v1/cluster/init', {});
  onProgress(`${first.name} is the manager at ${init.managerAddr}`);
  const { token } = await agent(first.socket).call<{ token: string }>('GET', '/v1/cluster/join-token/worker');
  await Promise.all(rest.map(async (n) => {
    await agent(n.socket).call('POST', '/v1/cluster/join', { token, addr: init.managerAddr });
    onProgress(`${n.name} joined as a worker`);
  }));
  return { manager: init.managerAddr };
}
