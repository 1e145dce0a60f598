/**
 * Parses `ipvsadm -Ln` (the human listing, what a person debugging a node reads) so VM tests can
 * assert the kernel's IPVS state independently of the dataplane's own reader (`ipvsadm -S -n`):
 *
 *   IP Virtual Server version 1.2.1 (size=4096)
 *   Prot LocalAddress:Port Scheduler Flags
 *     -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
 *   FWM  256 rr
 *     -> 10.40.0.11:80                Masq    1      0          0
 *   FWM  257 IPv6 rr
 *     -> [fd6d:6573:6864:ff00::aff:b]:80 Masq 1      0          0
 *
 * Virtual service lines start at column 0 with TCP/UDP/SCTP/FWM; real servers are `  -> ADDR:PORT
 * FORWARD WEIGHT ACTIVE INACTIVE` under their service. Header lines are skipped.
 */

export interface IpvsListReal {
  address: string;
  forward: string;
  weight: number;
  active: number;
  inactive: number;
}

export interface IpvsListService {
  /** `FWM 256`, `TCP 10.0.0.1:80` ... (protocol and address/mark, single-spaced). */
  service: string;
  scheduler: string;
  /** An IPv6 service: `FWM  257 IPv6 rr` (a `-f MARK -6` service) or a bracketed address. */
  ipv6: boolean;
  reals: IpvsListReal[];
}

export function parseIpvsList(text: string): IpvsListService[] {
  const out: IpvsListService[] = [];
  for (const line of text.split('\n')) {
    const svc = /^(TCP|UDP|SCTP|FWM)\s+(\S+)(\s+IPv6)?\s+(\S+)/.exec(line);
    if (svc) {
      out.push({ service: `${svc[1]} ${svc[2]}`, scheduler: svc[4]!, ipv6: svc[3] !== undefined || svc[2]!.startsWith('['), reals: [] });
      continue;
    }
    const real = /^\s+->\s+(\S+:\d+)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)/.exec(line);
    if (real && out.length) {
      out[out.length - 1]!.reals.push({ address: real[1]!, forward: real[2]!, weight: Number(real[3]), active: Number(real[4]), inactive: Number(real[5]) });
    }
  }
  return out;
}
