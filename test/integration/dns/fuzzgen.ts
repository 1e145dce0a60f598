/**
 * Deterministic generator of malformed (and a few valid) DNS queries for the fuzz test (issue 6 §Acceptance,
 * ARCHITECTURE §4 case 14). Each case says what the server must do with it: drop, or answer with one of
 * the allowed rcodes. 'any' marks mutations whose outcome is not fixed (random bit flips), where only
 * "no crash, no hang, a well-formed reply or a drop" is checked.
 */
import type { Rng } from '../../../src/core/clock.js';
import { buildQuery, encodeName, optRecord } from '../../unit/dns/helpers.js';

export type Expect = 'drop' | 'formerr' | 'notimp' | 'badvers' | 'any';

export interface FuzzCase {
  kind: string;
  buf: Buffer;
  expect: Expect;
}

const int = (rng: Rng, n: number): number => Math.floor(rng() * n);

function randomLabel(rng: Rng, max = 20): string {
  const abc = 'abcdefghijklmnopqrstuvwxyz0123456789-';
  let s = '';
  const n = 1 + int(rng, max);
  for (let i = 0; i < n; i++) s += abc[int(rng, abc.length)];
  return s;
}

function randomName(rng: Rng): string[] {
  return Array.from({ length: 1 + int(rng, 4) }, () => randomLabel(rng));
}

const generators: ((rng: Rng) => FuzzCase)[] = [
  (rng) => ({ kind: 'short-header', buf: Buffer.from(Array.from({ length: int(rng, 12) }, () => int(rng, 256))), expect: 'drop' }),
  (rng) => ({ kind: 'qr-set', buf: buildQuery({ id: int(rng, 65536), flags: 0x8000 | int(rng, 0x8000), name: randomName(rng) }), expect: 'drop' }),
  (rng) => ({ kind: 'opcode', buf: buildQuery({ id: int(rng, 65536), flags: (1 + int(rng, 15)) << 11, name: randomName(rng) }), expect: 'notimp' }),
  (rng) => ({ kind: 'qdcount-0', buf: buildQuery({ qdcount: 0, noQuestion: rng() < 0.5 }), expect: 'formerr' }),
  (rng) => ({ kind: 'qdcount-many', buf: buildQuery({ qdcount: 2 + int(rng, 65534), name: randomName(rng) }), expect: 'formerr' }),
  (rng) => {
    // compression pointer loops: in the question, or in an additional record's owner
    const selfLoop = Buffer.from([0xc0, 12]);
    if (rng() < 0.5) return { kind: 'pointer-loop', buf: buildQuery({ rawName: rng() < 0.5 ? selfLoop : Buffer.concat([encodeName(randomName(rng)).subarray(0, -1), Buffer.from([0xc0, 12])]) }), expect: 'formerr' };
    const q = buildQuery({ arcount: 1, name: randomName(rng) });
    const at = q.length;
    const loop = Buffer.from([0xc0, (at >> 0) & 0xff, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    loop[0] = 0xc0 | ((at >> 8) & 0x3f);
    return { kind: 'pointer-loop', buf: Buffer.concat([q, loop]), expect: 'formerr' };
  },
  (rng) => {
    const q = buildQuery({ arcount: 1, name: randomName(rng) });
    const target = q.length + 2 + int(rng, 0x3fff - q.length - 2);
    const rr = Buffer.from([0xc0 | (target >> 8), target & 0xff, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]);
    return { kind: 'pointer-out-of-bounds', buf: Buffer.concat([q, rr]), expect: 'formerr' };
  },
  (rng) => {
    const len = 64 + int(rng, 128); // 64..191: label types 01 and 10
    return { kind: 'label-over-63', buf: buildQuery({ rawName: Buffer.concat([Buffer.from([len]), Buffer.alloc(Math.min(len, 80), 0x61), Buffer.from([0])]) }), expect: 'formerr' };
  },
  (rng) => ({ kind: 'name-over-255', buf: buildQuery({ name: Array.from({ length: 5 + int(rng, 10) }, () => 'x'.repeat(50 + int(rng, 14))) }), expect: 'formerr' }),
  (rng) => ({ kind: 'bad-edns-version', buf: buildQuery({ arcount: 1, name: randomName(rng), extra: optRecord(512 + int(rng, 4000), 1 + int(rng, 255)) }), expect: 'badvers' }),
  (rng) => ({ kind: 'two-opt', buf: buildQuery({ arcount: 2, name: randomName(rng), extra: Buffer.concat([optRecord(), optRecord()]) }), expect: 'formerr' }),
  (rng) => {
    const edns = rng() < 0.5;
    const full = buildQuery({ name: randomName(rng), arcount: edns ? 1 : 0, extra: edns ? optRecord() : undefined });
    const cut = 12 + int(rng, full.length - 12);
    return { kind: 'truncated', buf: full.subarray(0, cut), expect: 'formerr' }; // question cut, or counts lie
  },
  (rng) => ({ kind: 'trailing-garbage', buf: Buffer.concat([buildQuery({ name: randomName(rng) }), Buffer.from(Array.from({ length: 1 + int(rng, 30) }, () => int(rng, 256)))]), expect: 'formerr' }),
  (rng) => ({ kind: 'random-bytes', buf: Buffer.from(Array.from({ length: int(rng, 600) }, () => int(rng, 256))), expect: 'any' }),
  (rng) => {
    const b = Buffer.from(buildQuery({ name: randomName(rng), arcount: 1, extra: optRecord() }));
    for (let i = 0, n = 1 + int(rng, 6); i < n; i++) b[int(rng, b.length)]! ^= 1 << int(rng, 8);
    return { kind: 'bit-flip', buf: b, expect: 'any' };
  },
];

export function fuzzCase(rng: Rng): FuzzCase {
  return generators[int(rng, generators.length)]!(rng);
}

export const FUZZ_KINDS = generators.length;
