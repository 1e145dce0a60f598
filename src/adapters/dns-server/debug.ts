/**
 * `netctl debug dns NAME`'s answer for a name that is not ours (server.ts `debug`): the query is really
 * forwarded (same forwarder, same bound and timeout) and the report says which upstream answered and what
 * it said. dns2 builds the query and decodes the upstream's answer (not a hot path).
 */
import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import DNS from 'dns2';
import { MeshError } from '../../core/errors.js';
import type { Explanation } from '../../core/dns/resolver.js';
import { decodeQuery } from '../../core/dns/wire.js';
import type { Forwarder } from './forwarder.js';
import { RCODE_NAMES } from './stats.js';

const { Packet } = DNS;

export interface DebugReport extends Explanation {
  /** Set when the name is not ours: what the upstream said (or why nobody did). */
  readonly upstream: { address: string | undefined; port: number | undefined; ms: number; rcode: string; answers: string[]; note: string | undefined } | undefined;
}

/** The report of `e` (how a sandbox would see the name): a forwarded name is asked upstream for real. */
export async function debugReport(forwarder: Forwarder, e: Explanation, name: string, qtype: number): Promise<DebugReport> {
  if (e.outcome !== 'forward') return { ...e, upstream: undefined };
  const p = new Packet();
  p.header.id = randomInt(0x10000);
  p.header.rd = 1;
  p.questions.push({ name: e.question.name, type: qtype, class: 1 } as never);
  const buf = p.toBuffer();
  const d = decodeQuery(buf);
  if (!d.ok) throw new MeshError('MESHD_BAD_ARGUMENT', `dns: cannot build a query for ${JSON.stringify(name)}: ${d.drop ? d.reason : d.reason}`);
  const t0 = performance.now();
  const upstream = await new Promise<DebugReport['upstream']>((resolve) => {
    const started = forwarder.forward(buf, d.query, false, (reply, up) => {
      const ms = Math.round((performance.now() - t0) * 100) / 100;
      if (!reply || !up) return resolve({ address: undefined, port: undefined, ms, rcode: 'SERVFAIL', answers: [], note: 'no upstream answered within the forward timeout' });
      const r = Packet.parse(reply);
      resolve({
        address: up.address,
        port: up.port,
        ms,
        rcode: RCODE_NAMES[r.header.rcode] ?? `RCODE${r.header.rcode}`,
        answers: r.answers.map((a) => {
          const x = a as unknown as { name: string; type: number; ttl: number; address?: string; domain?: string; data?: unknown };
          return `${x.name} ${x.ttl} ${x.type} ${x.address ?? x.domain ?? JSON.stringify(x.data ?? '')}`;
        }),
        note: undefined,
      });
    });
    if (!started) resolve({ address: undefined, port: undefined, ms: 0, rcode: 'SERVFAIL', answers: [], note: forwarder.hasUpstreams ? 'pending-forward bound reached' : 'no upstream resolvers configured' });
  });
  return { ...e, upstream };
}
