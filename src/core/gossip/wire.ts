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

/**
 * What a sender puts in a ping's or indirect ping's `sourceAddr`. No receiver reads that field: an ack goes
 * to the datagram's source address, a relay remembers the requester's source address, and a member's
 * address is its member record's. Filling it with the sender's "ip:port" cost 13 of a ping's 28 payload
 * bytes, 5 pings a second per member with the local preset (issue 18 §3, wire bytes against memberlist).
 * The field stays in the v1 layout, non-empty, so every v1 reader still accepts the packet.
 */
export const NO_SOURCE_ADDR = '-';

/** Wire type codes; never renumber. */
export const T = Object.freeze({
  ping: 1, indirectPing: 2, ack: 3, nack: 4, suspect: 5, alive: 6, dead: 7, compound: 8, pushPull: 9, table: 10, network: 11,
  pushPullPart: 12,
});

/** Type code → name (metrics labels); unknown codes read 'other'. */
export function typeName(code: number | undefined): string {
  return TYPE_NAMES[code ?? 0] ?? 'other';
}
const TYPE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1: 'ping', 2: 'indirect-ping', 3: 'ack', 4: 'nack', 5: 'suspect', 6: 'alive', 7: 'dead', 8: 'compound', 9: 'push-pull', 10: 'table', 11: 'network', 12: 'push-pull',
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
  /** One frame of a push-pull sent as several (stream only; `decodePushPullFrames` joins them). */
  | { type: 'push-pull-part'; part: number; last: boolean; state: PushPullState }
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
      writeLists(w, s, { members: [0, s.members.length], networks: [0, s.networks.length], entries: [0, s.entries.length] });
      break;
    }
    case 'push-pull-part': {
      const s = m.state;
      head(w, T.pushPullPart).str8(s.from, LIMITS.name).u8(s.join ? 1 : 0).u16(m.part).u8(m.last ? 1 : 0);
      writeLists(w, s, { members: [0, s.members.length], networks: [0, s.networks.length], entries: [0, s.entries.length] });
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

type Ranges = Record<'members' | 'networks' | 'entries', [number, number]>;

function writeMember(w: Writer, mb: MemberWire): void {
  w.str8(mb.name, LIMITS.name).str8(mb.addr, LIMITS.addr).u32(mb.incarnation).u8(STATE_CODES.indexOf(mb.state));
}

/** The three counted lists of a push-pull body, each item range [from, to). */
function writeLists(w: Writer, s: PushPullState, r: Ranges): void {
  w.u32(r.members[1] - r.members[0]);
  for (let i = r.members[0]; i < r.members[1]; i++) writeMember(w, s.members[i]!);
  w.u32(r.networks[1] - r.networks[0]);
  for (let i = r.networks[0]; i < r.networks[1]; i++) writeNetwork(w, s.networks[i]!);
  w.u32(r.entries[1] - r.entries[0]);
  for (let i = r.entries[0]; i < r.entries[1]; i++) writeEntry(w, s.entries[i]!);
}

/** Largest encoded member / network record / table entry (all fields at their LIMITS). */
const MAX_ITEM = { members: 1 + LIMITS.name + 1 + LIMITS.addr + 4 + 1, networks: 2 * (1 + LIMITS.name) + 4 + 1, entries: 3 * (1 + LIMITS.name) + 2 + LIMITS.key + 2 + LIMITS.value + 4 + 1 };
/** Part header: version, type, from, join, part, last, three counts. */
const PART_HEAD = 2 + 1 + LIMITS.name + 1 + 2 + 1 + 12;
/** Frames one push-pull can be numbered with. */
export const MAX_PUSH_PULL_PARTS = 0xffff;

/**
 * A push-pull state as stream frames of at most `maxFrameBytes` each (issue 18 §4: a 10,000-service
 * state is ~35 MiB, over the 8 MiB a frame may hold). A state that fits is ONE plain `push-pull`
 * message, byte for byte what it always was; a larger one is `push-pull-part` frames 0..n−1, the
 * last flagged, carrying members, then network records, then entries in order, so the joined state
 * is the same list (records still precede the entries they admit). Each frame is filled while the
 * largest possible next item still fits. Throws RangeError past MAX_PUSH_PULL_PARTS frames.
 */
export function encodePushPull(state: PushPullState, maxFrameBytes: number): Uint8Array[] {
  const one = encode({ type: 'push-pull', state });
  if (one.length <= maxFrameBytes) return [one];
  const frames: Uint8Array[] = [];
  const lists = ['members', 'networks', 'entries'] as const;
  const pos = { members: 0, networks: 0, entries: 0 };
  while (frames.length === 0 || lists.some((l) => pos[l] < state[l].length)) {
    if (frames.length >= MAX_PUSH_PULL_PARTS) throw new RangeError(`push-pull needs more than ${MAX_PUSH_PULL_PARTS} frames`);
    const w = head(new Writer(Math.min(maxFrameBytes, 1 << 20)), T.pushPullPart).str8(state.from, LIMITS.name).u8(state.join ? 1 : 0).u16(frames.length);
    const lastAt = w.length;
    w.u8(0);
    for (const l of lists) {
      const countAt = w.length;
      w.u32(0);
      let n = 0;
      const items = state[l];
      while (pos[l] < items.length && w.length + MAX_ITEM[l] + 12 <= maxFrameBytes) {
        if (l === 'members') writeMember(w, state.members[pos[l]]!);
        else if (l === 'networks') writeNetwork(w, state.networks[pos[l]]!);
        else writeEntry(w, state.entries[pos[l]]!);
        pos[l]++;
        n++;
      }
      w.patchU32(countAt, n);
    }
    const done = lists.every((l) => pos[l] >= state[l].length);
    const bytes = w.finish();
    if (done) bytes[lastAt] = 1;
    frames.push(bytes);
  }
  return frames;
}

/** Smallest frame size `encodePushPull` can work with (one item of each kind after the header). */
export const MIN_PUSH_PULL_FRAME = PART_HEAD + MAX_ITEM.members + MAX_ITEM.networks + MAX_ITEM.entries;

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

/** Decodes a stream (TCP) message: a ping (TCP fallback), an ack, or a push-pull state (or one frame of it) up to maxBytes. */
export function decodeStream(bytes: Uint8Array, maxBytes: number): Decoded {
  return guard(bytes, maxBytes, (r, type): Msg => {
    if (type === T.ping || type === T.ack) return decodeBody(r, type, false);
    if (type !== T.pushPull && type !== T.pushPullPart) throw new WireError('bad-type');
    const from = r.str8(LIMITS.name);
    const join = r.bool();
    const part = type === T.pushPullPart ? r.u16() : -1;
    const last = type === T.pushPullPart ? r.bool() : true;
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
    const state = { from, join, members, networks, entries };
    return part < 0 ? { type: 'push-pull', state } : { type: 'push-pull-part', part, last, state };
  });
}

/**
 * One stream's frames → one message. A single frame is what `decodeStream` makes of it (a lone
 * part must be part 0 and last). Several frames must all be parts of one sender's push-pull,
 * numbered 0..n−1, only the final one flagged last, at most `maxFrames` of them; each frame is
 * bounded by `maxBytes` and decoded as strictly as a single message. Returns the joined push-pull.
 */
export function decodePushPullFrames(frames: readonly Uint8Array[], maxBytes: number, maxFrames: number): Decoded {
  if (!Array.isArray(frames) || frames.length === 0) return { ok: false, reason: 'empty' };
  if (frames.length > maxFrames) return { ok: false, reason: 'too-many-frames' };
  const parts: Array<Extract<Msg, { type: 'push-pull-part' }>> = [];
  for (const f of frames) {
    const d = decodeStream(f, maxBytes);
    if (!d.ok) return d;
    if (d.msg.type !== 'push-pull-part') {
      if (frames.length === 1) return d;
      return { ok: false, reason: 'bad-part' };
    }
    parts.push(d.msg);
  }
  const first = parts[0]!.state;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.part !== i || p.last !== (i === parts.length - 1) || p.state.from !== first.from || p.state.join !== first.join) return { ok: false, reason: 'bad-part' };
  }
  if (parts.length === 1) return { ok: true, msg: { type: 'push-pull', state: first } };
  const state: PushPullState = { from: first.from, join: first.join, members: [], networks: [], entries: [] };
  for (const p of parts) {
    for (const x of p.state.members) state.members.push(x);
    for (const x of p.state.networks) state.networks.push(x);
    for (const x of p.state.entries) state.entries.push(x);
  }
  return { ok: true, msg: { type: 'push-pull', state } };
}
