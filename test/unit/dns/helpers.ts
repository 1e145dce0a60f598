/** Hand-built DNS queries (valid or deliberately broken) for the dns tests. */

export function encodeName(labels: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = typeof l === 'string' ? Buffer.from(l, 'latin1') : l;
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

export interface QuerySpec {
  id?: number;
  /** Flags word (default 0x0100: RD). */
  flags?: number;
  qdcount?: number;
  ancount?: number;
  nscount?: number;
  arcount?: number;
  name?: readonly (string | Buffer)[];
  /** Raw question name bytes (overrides `name`). */
  rawName?: Buffer;
  type?: number;
  class?: number;
  /** Omit the question section. */
  noQuestion?: boolean;
  /** Bytes appended after the question (additional records, garbage). */
  extra?: Buffer;
}

export function buildQuery(s: QuerySpec = {}): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(s.id ?? 0x1234, 0);
  h.writeUInt16BE(s.flags ?? 0x0100, 2);
  h.writeUInt16BE(s.qdcount ?? 1, 4);
  h.writeUInt16BE(s.ancount ?? 0, 6);
  h.writeUInt16BE(s.nscount ?? 0, 8);
  h.writeUInt16BE(s.arcount ?? 0, 10);
  const parts: Buffer[] = [h];
  if (!s.noQuestion) {
    parts.push(s.rawName ?? encodeName(s.name ?? ['web']));
    const tc = Buffer.alloc(4);
    tc.writeUInt16BE(s.type ?? 1, 0);
    tc.writeUInt16BE(s.class ?? 1, 2);
    parts.push(tc);
  }
  if (s.extra) parts.push(s.extra);
  return Buffer.concat(parts);
}

/** An OPT record (EDNS0) with the given UDP payload size and version. */
export function optRecord(udpSize = 1232, version = 0): Buffer {
  const b = Buffer.alloc(11);
  b.writeUInt16BE(41, 1);
  b.writeUInt16BE(udpSize, 3);
  b.writeUInt32BE((version << 16) >>> 0, 5);
  return b;
}
