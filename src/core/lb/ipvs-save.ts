/**
 * The IPVS table as `ipvsadm -S -n` prints it (restore format), parsed — the kernel side of an IPVS
 * full resync (ipvs-render.ts `renderIpvsFull` diffs it against the desired state) and of the
 * read-back (`Dataplane.readKernel`). Pure.
 *
 *   -A -f 256 -s rr
 *   -a -f 256 -r 10.0.1.2:8080 -m -w 1
 *   -A -t 10.0.0.1:80 -s wlc -p 300
 *   -A -f 259 -6 -s rr
 *   -a -f 259 -6 -r [fd6d:6573:6864:ff00::aff:3]:80 -m -w 1
 *
 * A service is identified by its spec (`-f MARK`, `-t|-u ADDR:PORT`, `--sctp-service ADDR:PORT`), which
 * is also what `-D`/`-d` need to remove it; a fwmark service of the IPv6 family (`-6` anywhere on the
 * line) is `-f MARK -6`, since IPVS keys fwmark services by mark and family. Lines that are neither `-A` nor `-a` are ignored; a real
 * server line whose service was not listed before it still creates the service (scheduler unknown).
 */

export interface IpvsSavedReal {
  ip: string;
  port: number;
  weight: number;
  /** Forwarding method letter: `m` (masquerade, what meshd programs), `g` (direct routing), `i` (tunnel). */
  forward: string;
}

export interface IpvsSavedService {
  /** `-f 256`, `-f 259 -6`, `-t 10.0.0.1:80`: the arguments that name this service to ipvsadm. */
  spec: string;
  /** The firewall mark of a fwmark service; null for an address:port service (meshd never programs those). */
  fwmark: number | null;
  /** Scheduler name (`rr`), '' when the line had none. */
  scheduler: string;
  /** Anything on the `-A` line beyond the spec and the scheduler (`-p 300` ...): meshd sets none. */
  extra: string;
  reals: IpvsSavedReal[];
}

/** The kernel as a full IPVS resync sees it: the IPVS table and the mark table's frontend key → mark. */
export interface IpvsKernelView {
  services: IpvsSavedService[];
  marks: ReadonlyMap<string, number>;
}

/** A namespace with nothing in it (first start in a new sandbox). */
export const EMPTY_IPVS_VIEW: IpvsKernelView = { services: [], marks: new Map() };

const SPEC_FLAGS = new Set(['-f', '-t', '-u', '--sctp-service']);

function addrPort(s: string): { ip: string; port: number } {
  const i = s.lastIndexOf(':');
  return { ip: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

export function parseIpvsSaveText(text: string): IpvsSavedService[] {
  const out = new Map<string, IpvsSavedService>();
  const service = (spec: string): IpvsSavedService => {
    let s = out.get(spec);
    if (!s) {
      const [flag, arg] = spec.split(' '); // `-f 259 -6`: the mark is still the second word
      const mark = flag === '-f' ? Number(arg) : NaN;
      s = { spec, fwmark: Number.isInteger(mark) ? mark : null, scheduler: '', extra: '', reals: [] };
      out.set(spec, s);
    }
    return s;
  };
  for (const line of text.split('\n')) {
    const t = line.trim().split(/\s+/);
    if (t[0] !== '-A' && t[0] !== '-a') continue;
    const i = t.findIndex((x) => SPEC_FLAGS.has(x));
    if (i < 0 || t[i + 1] === undefined) continue;
    const v6 = t[i] === '-f' ? t.indexOf('-6') : -1;
    const spec = `${t[i]} ${t[i + 1]}${v6 > 0 ? ' -6' : ''}`;
    const s = service(spec);
    const rest = t.filter((_, j) => j !== 0 && j !== i && j !== i + 1 && j !== v6);
    if (t[0] === '-A') {
      const si = rest.indexOf('-s');
      s.scheduler = si >= 0 ? (rest[si + 1] ?? '') : '';
      s.extra = rest.filter((_, j) => si < 0 || (j !== si && j !== si + 1)).join(' ');
      continue;
    }
    const ri = rest.indexOf('-r');
    if (ri < 0 || rest[ri + 1] === undefined) continue;
    const wi = rest.indexOf('-w');
    const w = wi >= 0 ? Number(rest[wi + 1]) : 1;
    const forward = rest.find((x) => x === '-m' || x === '-g' || x === '-i')?.slice(1) ?? 'g';
    s.reals.push({ ...addrPort(rest[ri + 1]!), weight: Number.isFinite(w) ? w : 1, forward });
  }
  return [...out.values()];
}
