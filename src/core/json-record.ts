/**
 * One codec for the small JSON records nodes write into gossip tables (drain acks, convergence
 * acks). Pure. Bytes come from the network, so decoding never throws: invalid UTF-8, bad JSON or a
 * record its validator refuses all decode to null (the caller counts or ignores it). `__proto__`
 * keys are dropped while parsing so a record can never reach an object's prototype.
 */
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export interface JsonRecordCodec<T> {
  encode(value: T): Uint8Array;
  /** The validated record, or null for anything else. */
  decode(bytes: Uint8Array): T | null;
}

/**
 * `validate` gets the parsed JSON object (never null, never an array) and returns the typed record
 * (copy only the fields it checked) or null.
 */
export function jsonRecordCodec<T>(validate: (o: Record<string, unknown>) => T | null): JsonRecordCodec<T> {
  return {
    encode: (value) => enc.encode(JSON.stringify(value)),
    decode: (bytes) => {
      let o: unknown;
      try {
        o = JSON.parse(dec.decode(bytes), (k, v: unknown) => (k === '__proto__' ? undefined : v));
      } catch {
        return null;
      }
      return o !== null && typeof o === 'object' && !Array.isArray(o) ? validate(o as Record<string, unknown>) : null;
    },
  };
}

/** A finite number (NaN and ±Infinity are not). */
export function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}
