/**
 * In-memory OverlayKernel for unit tests and --dry-run: interprets exactly the
 * operations diff() emits, and counts the batches a real kernel would have spawned.
 * Tests mutate `state` directly to simulate drift (a deleted FDB entry, a lost sandbox).
 */
import { MeshError } from '../../core/errors.js';
import { ipKey } from '../../core/overlay/desired.js';
import { type Op, toBatches } from '../../core/overlay/diff.js';
import type { NodeState, Sandbox, VxlanLink } from '../../core/overlay/model.js';
import type { ApplyStats } from './apply.js';
import type { OverlayKernel } from './overlay.js';

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

export class FakeOverlayKernel implements OverlayKernel {
  state: NodeState = { sandboxes: [], strayHostLinks: [] };
  /** Links created in the host namespace and not yet moved. */
  private host = new Map<string, VxlanLink>();
  batches = 0;

  async read(): Promise<NodeState> {
    const s = clone(this.state);
    s.strayHostLinks = [...new Set([...s.strayHostLinks, ...this.host.keys()])].sort();
    s.sandboxes.sort((a, b) => (a.ns < b.ns ? -1 : 1));
    return s;
  }

  async apply(ops: readonly Op[]): Promise<ApplyStats> {
    this.batches += toBatches(ops).length;
    let lines = 0;
    for (const op of ops) {
      if (op.kind === 'netns-add') {
        if (this.sb(op.ns, false)) throw new MeshError('MESHD_EXEC_FAILED', `netns ${op.ns} exists`);
        this.state.sandboxes.push({ ns: op.ns, network: '', bridge: null, vxlan: null, fdb: [], neigh: [] });
      } else if (op.kind === 'netns-del') {
        this.state.sandboxes = this.state.sandboxes.filter((s) => s.ns !== op.ns);
      } else {
        lines++;
        this.line(op.kind, op.ns, op.line);
      }
    }
    return { processes: toBatches(ops).length, lines };
  }

  private sb(ns: string, must = true): Sandbox | undefined {
    const s = this.state.sandboxes.find((x) => x.ns === ns);
    if (!s && must) throw new MeshError('MESHD_EXEC_FAILED', `no netns ${ns}`);
    return s;
  }

  private line(tool: 'ip' | 'bridge', ns: string | null, line: string): void {
    const w = line.split(' ');
    const arg = (k: string): string => w[w.indexOf(k) + 1] ?? '';
    if (ns === null) {
      if (w[0] === 'link' && w[1] === 'add') {
        this.host.set(w[2] ?? '', {
          name: w[2] ?? '', vni: Number(arg('id')), port: Number(arg('dstport')), local: arg('local'), learning: w.includes('learning'),
          proxy: w.includes('proxy'), mtu: Number(arg('mtu')), master: null, up: false,
        });
      } else if (w[0] === 'link' && w[1] === 'set' && w[3] === 'netns') {
        const l = this.host.get(w[2] ?? '');
        if (!l) throw new MeshError('MESHD_EXEC_FAILED', `no link ${w[2]}`);
        this.host.delete(l.name);
        this.sb(w[4] ?? '')!.vxlan = l;
      } else if (w[0] === 'link' && w[1] === 'del') {
        this.host.delete(w[2] ?? '');
        this.state.strayHostLinks = this.state.strayHostLinks.filter((n) => n !== w[2]);
      } else throw new MeshError('MESHD_EXEC_FAILED', `fake: unsupported host line ${line}`);
      return;
    }
    const s = this.sb(ns)!;
    if (tool === 'bridge') {
      const mac = w[2] ?? '';
      s.fdb = s.fdb.filter((f) => f.mac !== mac);
      if (w[1] === 'replace') s.fdb.push({ mac, dst: arg('dst') });
      s.fdb.sort((a, b) => (a.mac < b.mac ? -1 : 1));
      return;
    }
    if (w[0] === 'link' && w[1] === 'add') s.bridge = { name: w[2] ?? '', mtu: 1500, up: false, addrs: [] };
    else if (w[0] === 'link' && w[1] === 'del') {
      if (s.vxlan?.name === w[2]) {
        s.vxlan = null;
        s.fdb = [];
        s.neigh = [];
      }
    } else if (w[0] === 'link' && w[1] === 'set') {
      const l = s.bridge?.name === w[2] ? s.bridge : s.vxlan?.name === w[2] ? s.vxlan : null;
      if (!l) throw new MeshError('MESHD_EXEC_FAILED', `fake: no link ${w[2]} in ${ns}`);
      if (w.includes('mtu')) l.mtu = Number(arg('mtu'));
      if (w.includes('up')) l.up = true;
      if ('master' in l && w.includes('master')) l.master = arg('master');
    } else if (w[0] === 'addr') {
      const b = s.bridge;
      if (!b) throw new MeshError('MESHD_EXEC_FAILED', 'fake: no bridge');
      b.addrs = b.addrs.filter((a) => a !== w[2]);
      if (w[1] === 'add') b.addrs.push(w[2] ?? '');
      b.addrs.sort();
    } else if (w[0] === 'neigh') {
      s.neigh = s.neigh.filter((n) => n.ip !== w[2]);
      if (w[1] === 'replace') s.neigh.push({ ip: w[2] ?? '', mac: arg('lladdr') });
      s.neigh.sort((a, b) => (ipKey(a.ip) < ipKey(b.ip) ? -1 : 1));
    } else throw new MeshError('MESHD_EXEC_FAILED', `fake: unsupported line ${line}`);
  }
}
