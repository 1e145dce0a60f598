/**
 * Bounded binary writer/reader over Uint8Array + DataView (big-endian). The reader never reads past
 * its buffer: every failure becomes a WireError carrying a stable reason code, caught at the codec's boundary.
 */

export type DecodeReason =
  | 'empty' | 'bad-version' | 'truncated' | 'bad-type' | 'length' | 'oversized' | 'bad-string'
  | 'trailing' | 'nested-compound' | 'bad-incarnation' | 'bad-flag' | 'malformed'
  /** A multi-frame push-pull: frames out of order, mixed senders, a frame after the last, no last. */
  | 'bad-part'
  /** A push-pull stream of more frames than maxPushPullFrames. */
  | 'too-many-frames';

/** Internal: thrown by Reader, converted to `{ok:false, reason}` by the decoders. */
export class WireError extends Error {
  constructor(readonly reason: DecodeReason) {
    super(reason);
    this.name = 'WireError';
  }
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;
  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }
  get length(): number {
    return this.pos;
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): this {
    this.ensure(1);
    this.view.setUint8(this.pos, v);
    this.pos += 1;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
    return this;
  }
  raw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  /** String with a u8 length prefix; `max` bytes at most (callers validate before encoding). Encodes in place. */
  str8(s: string, max: number): this {
    this.ensure(1 + s.length * 3);
    const r = utf8.encodeInto(s, this.buf.subarray(this.pos + 1, this.pos + 1 + Math.min(max, 255)));
    if (r.read !== s.length) throw new RangeError(`string too long (> ${max} bytes)`);
    this.buf[this.pos] = r.written;
    this.pos += 1 + r.written;
    return this;
  }
  /** String with a u16 length prefix. */
  str16(s: string, max: number): this {
    const b = utf8.encode(s);
    if (b.length > max) throw new RangeError(`string too long (${b.length} > ${max})`);
    return this.u16(b.length).raw(b);
  }
  /** Bytes with a u16 length prefix. */
  bytes16(b: Uint8Array, max: number): this {
    if (b.length > max) throw new RangeError(`value too long (${b.length} > ${max})`);
    return this.u16(b.length).raw(b);
  }
  /** Overwrites the u32 at `pos` (a count written before the items it counts). */
  patchU32(pos: number, v: number): this {
    this.view.setUint32(pos, v >>> 0);
    return this;
  }
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export class Reader {
  private readonly view: DataView;
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new WireError('truncated');
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  bool(): boolean {
    const v = this.u8();
    if (v > 1) throw new WireError('bad-flag');
    return v === 1;
  }
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  /** A view (no copy) of the next n bytes: for transient data such as compound parts. */
  sub(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  private text(n: number): string {
    this.need(n);
    try {
      const s = utf8Strict.decode(this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
      return s;
    } catch {
      throw new WireError('bad-string');
    }
  }
  /** u8-prefixed string, at most `max` bytes, non-empty unless allowEmpty. */
  str8(max: number, allowEmpty = false): string {
    const n = this.u8();
    if (n > max || (n === 0 && !allowEmpty)) throw new WireError('length');
    return this.text(n);
  }
  str16(max: number): string {
    const n = this.u16();
    if (n > max || n === 0) throw new WireError('length');
    return this.text(n);
  }
  bytes16(max: number): Uint8Array {
    const n = this.u16();
    if (n > max) throw new WireError('length');
    return this.raw(n);
  }
  /** A record count, refused when the remaining bytes cannot hold `count × minRecordBytes`. */
  count32(minRecordBytes: number): number {
    const n = this.u32();
    if (n * minRecordBytes > this.remaining) throw new WireError('length');
    return n;
  }
  end(): void {
    if (this.remaining !== 0) throw new WireError('trailing');
  }
}
