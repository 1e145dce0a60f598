/** In-memory VXLAN guard for unit tests; `failWith` simulates an nft failure. */
import { MeshError } from '../../src/core/errors.js';
import { checkGuardArgs, type GuardState, type VxlanGuard } from '../../src/adapters/firewall/vxlan-guard.js';

export class FakeVxlanGuard implements VxlanGuard {
  state: GuardState = { installed: false, port: null, allow: [], droppedPackets: 0, fragmentsPass: false, ipv6: false };
  failWith: string | null = null;
  async ensure(port: number, allow: readonly string[]): Promise<void> {
    const a = checkGuardArgs(port, allow);
    if (this.failWith) throw new MeshError('MESHD_NOT_READY', `cannot install the VXLAN guard: ${this.failWith}; overlay stays down (fail closed)`);
    this.state = { installed: true, port, allow: a, droppedPackets: this.state.port === port ? this.state.droppedPackets : 0, fragmentsPass: true, ipv6: true };
  }
  /** Calls to update() (one transaction each, no read-back). */
  updates = 0;
  async update(port: number, allow: readonly string[]): Promise<void> {
    const a = checkGuardArgs(port, allow);
    if (this.failWith) throw new MeshError('MESHD_NOT_READY', `cannot update the VXLAN guard's members: ${this.failWith}`);
    if (!this.state.installed) throw new MeshError('MESHD_NOT_READY', 'cannot update the VXLAN guard\'s members: not installed');
    this.updates++;
    this.state = { ...this.state, allow: a };
  }
  async read(): Promise<GuardState> {
    return { ...this.state, allow: [...this.state.allow] };
  }
  async remove(): Promise<void> {
    this.state = { installed: false, port: null, allow: [], droppedPackets: 0, fragmentsPass: false, ipv6: false };
  }
}
