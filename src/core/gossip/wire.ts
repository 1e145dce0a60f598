/**
 * Versioned compact binary codec for gossip messages. Layout: [version u8][type u8][body], big-endian.
 * Every length is bounded (LIMITS); decoders never throw: they return `{ok:false, reason}`.
 * Incarnation 2^32−1 is reserved (refused on decode) so that a refutation always has headroom.
 */
import { Reader, WireError, Writer, type DecodeReason } from './buf.js';

export const WIRE_VERSION = 1;

export const LIMITS = Object.freeze({
  name: 64, // member, network and table names, bytes
  addr: 64, // "ip:port"
  key: 256, // table keys
  value: 4096, // table values
  compoundParts: 64,
  udpBytes: 65_507, // largest UDP payload that can exist
});

export const MAX_INCARNATION = 0xffff_fffe;

/** Wire type codes; never renumber. */
export const T = Object.freeze({
  ping: 1, indirectPing: 2, ack: 3, nack: 4, suspect: 5, alive: 6, dead: 7, compound: 8, pushPull: 9, table: 10, network: 11,
});

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';
const STATE_CODES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

export interface TableEntryWire {
  network: string;
  table: string;
  key: string;
  value: Uint8Array;
  ltime: number;
  owner: string;
  deleted: boolean;
}
export interface NetworkRecordWire {
  node: string;
  network: string;
  ltime: number;
  leave: boolean;
}
export interface MemberWire {
  name: string;
  addr: string;
  incarnation: number;
  state: MemberState;
}
export interface PushPullState {
  from: string;
  join: boolean;
  members: MemberWire[];
  networks: NetworkRecordWire[];
  entries: TableEntryWire[];
}

export type Msg =
  | { type: 'ping'; seq: number; target: string; source: string; sourceAddr: string }
  | { type: 'indirect-ping'; seq: number; target: string; targetAddr: string; source: string; sourceAddr: string; nack: boolean }
  | { type: 'ack'; seq: number }
  | { type: 'nack'; seq: number }
  | { type: 'suspect'; incarnation: number; node: string; from: string }
  | { type: 'alive'; incarnation: number; node: string; addr: string }
  | { type: 'dead'; incarnation: number; node: string; from: string; left: boolean }
  | { type: 'compound'; parts: Uint8Array[] }
  | { type: 'push-pull'; state: PushPullState }
  | ({ type: 'table' } & TableEntryWire)
  | ({ type: 'network' } & NetworkRecordWire);

export type Decoded<M = Msg> = { ok: true; msg: M } | { ok: false; reason: DecodeReason };

function head(w: Writer, type: number): Writer {
  return w.u8(WIRE_VERSION).u8(type);
}

function writeEntry(w: Writer, e: TableEntryWire): void {
  w.str8(e.network, LIMITS.name).str8(e.table, LIMITS.name).str16(e.key, LIMITS.key).bytes16(e.value, LIMITS.value);
  w.u32(e.ltime).str8(e.owner, LIMITS.name).u8(e.deleted ? 1 : 0);
}
function writeNetwork(w: Writer, n: NetworkRecordWire): void {
  w.str8(n.node, LIMITS.name).str8(n.network, LIMITS.name).u32(n.ltime).u8(n.leave ? 1 : 0);
}

/** Encodes one message. Throws RangeError on a local programming error (over-long field); never on peer input. */
export function encode(m: Msg): Uint8Array {
  const w = new Writer(m.type === 'push-pull' ? 64 + 48 * (m.state.members.length + m.state.networks.length) + 96 * m.state.entries.length : 96);
  switch (m.type) {
    case 'ping':
      head(w, T.ping).u32(m.seq).str8(m.target, LIMITS.name).str8(m.source, LIMITS.name).str8(m.sourceAddr, LIMITS.addr);
      break;
    case 'indirect-ping':
      head(w, T.indirectPing).u32(m.seq).str8(m.target, LIMITS.name).str8(m.targetAddr, LIMITS.addr)
        .str8(m.source, LIMITS.name).str8(m.sourceAddr, LIMITS.addr).u8(m.nack ? 1 : 0);
      break;
    case 'ack':
      head(w, T.ack).u32(m.seq);
      break;
    case 'nack':
      head(w, T.nack).u32(m.seq);
      break;
    case 'suspect':
      head(w, T.suspect).u32(m.incarnation).str8(m.node, LIMITS.name).str8(m.from, LIMITS.name);
      break;
    case 'alive':
      head(w, T.alive).u32(m.incarnation).str8(m.node, LIMITS.name).str8(m.addr, LIMITS.addr);
      break;
    case 'dead':
      head(w, T.dead).u32(m.incarnation).str8(m.node, LIMITS.name).str8(m.from, LIMITS.name).u8(m.left ? 1 : 0);
      break;
    case 'compound':
      return encodeCompound(m.parts);
    case 'push-pull': {
      const s = m.state;
      head(w, T.pushPull).str8(s.from, LIMITS.name).u8(s.join ? 1 : 0);
      w.u32(s.members.length);
      for (const mb of s.members) {
        w.str8(mb.name, LIMITS.name).str8(mb.addr, LIMITS.addr).u32(mb.incarnation).u8(STATE_CODES.indexOf(mb.state));
      }
      w.u32(s.networks.length);
      for (const n of s.networks) writeNetwork(w, n);
      w.u32(s.entries.length);
      for (const e of s.entries) writeEntry(w, e);
      break;
    }
    case 'table':
      writeEntry(head(w, T.table), m);
      break;
    case 'network':
      writeNetwork(head(w, T.network), m);
      break;
  }
  return w.finish();
}

/** Compound packet: [ver][8][count u8][len u16 × count][parts…]. 1..64 parts, each a complete message. */
export function encodeCompound(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 0 || parts.length > LIMITS.compoundParts) throw new RangeError(`compound needs 1..${LIMITS.compoundParts} parts`);
  const w = head(new Writer(), T.compound).u8(parts.length);
  for (const p of parts) w.u16(p.length);
  for (const p of parts) w.raw(p);
  return w.finish();
}

/** Bytes a part adds to a compound packet. */
export const COMPOUND_PART_OVERHEAD = 2;
/** Bytes of a compound header. */
export const COMPOUND_HEADER = 3;

function incarnation(r: Reader): number {
  const v = r.u32();
  if (v > MAX_INCARNATION) throw new WireError('bad-incarnation');
  return v;
}
function readEntry(r: Reader): TableEntryWire {
  const network = r.str8(LIMITS.name);
  const table = r.str8(LIMITS.name);
  const key = r.str16(LIMITS.key);
  const value = r.bytes16(LIMITS.value);
  const ltime = r.u32();
  const owner = r.str8(LIMITS.name);
  const deleted = r.bool();
  return { network, table, key, value, ltime, owner, deleted };
}
function readNetwork(r: Reader): NetworkRecordWire {
  return { node: r.str8(LIMITS.name), network: r.str8(LIMITS.name), ltime: r.u32(), leave: r.bool() };
}

function decodeBody(r: Reader, type: number, allowCompound: boolean): Msg {
  switch (type) {
    case T.ping:
      return { type: 'ping', seq: r.u32(), target: r.str8(LIMITS.name), source: r.str8(LIMITS.name), sourceAddr: r.str8(LIMITS.addr) };
    case T.indirectPing:
      return {
        type: 'indirect-ping', seq: r.u32(), target: r.str8(LIMITS.name), targetAddr: r.str8(LIMITS.addr),
        source: r.str8(LIMITS.name), sourceAddr: r.str8(LIMITS.addr), nack: r.bool(),
      };
    case T.ack:
      return { type: 'ack', seq: r.u32() };
    case T.nack:
      return { type: 'nack', seq: r.u32() };
    case T.suspect:
      return { type: 'suspect', incarnation: incarnation(r), node: r.str8(LIMITS.name), from: r.str8(LIMITS.name) };
    case T.alive:
      return { type: 'alive', incarnation: incarnation(r), node: r.str8(LIMITS.name), addr: r.str8(LIMITS.addr) };
    case T.dead:
      return { type: 'dead', incarnation: incarnation(r), node: r.str8(LIMITS.name), from: r.str8(LIMITS.name), left: r.bool() };
    case T.table:
      return { type: 'table', ...readEntry(r) };
    case T.network:
      return { type: 'network', ...readNetwork(r) };
    case T.compound: {
      if (!allowCompound) throw new WireError('nested-compound');
      const count = r.u8();
      if (count === 0 || count > LIMITS.compoundParts) throw new WireError('length');
      const lens: number[] = [];
      for (let i = 0; i < count; i++) lens.push(r.u16());
      const parts: Uint8Array[] = [];
      for (const n of lens) parts.push(r.sub(n));
      return { type: 'compound', parts };
    }
    default:
      throw new WireError('bad-type');
  }
}

function guard<M>(bytes: Uint8Array, maxBytes: number, body: (r: Reader, type: number) => M): Decoded<M> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) return { ok: false, reason: 'empty' };
  if (bytes.length > maxBytes) return { ok: false, reason: 'oversized' };
  if (bytes[0] !== WIRE_VERSION) return { ok: false, reason: 'bad-version' };
  if (bytes.length < 2) return { ok: false, reason: 'truncated' };
  try {
    const r = new Reader(bytes);
    r.u8();
    const type = r.u8();
    const msg = body(r, type);
    r.end();
    return { ok: true, msg };
  } catch (e) {
    if (e instanceof WireError) return { ok: false, reason: e.reason };
    return { ok: false, reason: 'malformed' }; // not expected: a codec bug surfaces as its own counter
  }
}

/**
 * Decodes a UDP payload (or one compound part: pass allowCompound=false). Push-pull is stream-only and refused here.
 */
export function decodePacket(bytes: Uint8Array, allowCompound = true): Decoded {
  return guard(bytes, LIMITS.udpBytes, (r, type) => {
    if (type === T.pushPull) throw new WireError('bad-type');
    return decodeBody(r, type, allowCompound);
  });
}

/** Decodes a stream (TCP) message: a ping (TCP fallback), an ack, or a push-pull state up to maxBytes. */
export function decodeStream(bytes: Uint8Array, maxBytes: number): Decoded {
  return guard(bytes, maxBytes, (r, type): Msg => {
    if (type === T.ping || type === T.ack) return decodeBody(r, type, false);
    if (type !== T.pushPull) throw new WireError('bad-type');
    const from = r.str8(LIMITS.name);
    const join = r.bool();
    const members: MemberWire[] = [];
    for (let i = 0, n = r.count32(11); i < n; i++) {
      const name = r.str8(LIMITS.name);
      const addr = r.str8(LIMITS.addr);
      const inc = incarnation(r);
      const state = STATE_CODES[r.u8()];
      if (!state) throw new WireError('bad-flag');
      members.push({ name, addr, incarnation: inc, state });
    }
    const networks: NetworkRecordWire[] = [];
    for (let i = 0, n = r.count32(9); i < n; i++) networks.push(readNetwork(r));
    const entries: TableEntryWire[] = [];
    for (let i = 0, n = r.count32(16); i < n; i++) entries.push(readEntry(r));
    return { type: 'push-pull', state: { from, join, members, networks, entries } };
  });
}
