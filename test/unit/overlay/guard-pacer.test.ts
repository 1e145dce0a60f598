/**
 * The VXLAN guard's pacing policy (core/overlay/guard-pacer.ts) on simulated time: one
 * transaction a second at most, trailing edge with the allow-list as it is when the window opens,
 * a verify first / every verifyEveryMs / after a failure, back-off on failures; and a seeded
 * simulation of member churn: every gap ≥ 1 s, a removed member gone within 1 s + one transaction,
 * the final set always programmed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../../src/core/clock.js';
import { DEFAULT_GUARD_PACER, GuardPacer, normalizeAllow } from '../../../src/core/overlay/guard-pacer.js';

const A = '10.0.0.1';
const B = '10.0.0.2';
const C = '10.0.0.3';

describe('GuardPacer', () => {
  test('nothing to do before want(); the first write is a verify, due at once', () => {
    const p = new GuardPacer();
    assert.equal(p.nextDeadline(), undefined);
    assert.equal(p.start(0), undefined);
    assert.equal(p.status, 'never');
    p.want([B, A, A]);
    assert.equal(p.nextDeadline(), 0);
    assert.deepEqual(p.start(5), { mode: 'verify', allow: [A, B] });
    assert.equal(p.nextDeadline(), undefined, 'one at a time');
    assert.equal(p.start(6), undefined);
    p.finish(20, true);
    assert.equal(p.status, 'ok');
    assert.deepEqual(p.programmed, [A, B]);
    assert.equal(p.nextDeadline(), 5 + DEFAULT_GUARD_PACER.verifyEveryMs, 'idle: the next periodic verify');
  });

  test('changes inside the 1 s window wait for it and are written as they are then (trailing edge), as one update', () => {
    const p = new GuardPacer();
    p.want([A]);
    p.start(0);
    p.finish(10, true);
    p.want([A, B]);
    assert.equal(p.nextDeadline(), 1000);
    assert.equal(p.start(999), undefined);
    p.want([A, B, C]);
    p.want([B, C]); // A leaves before the window opens
    assert.deepEqual(p.start(1000), { mode: 'update', allow: [B, C] });
    p.finish(1003, true);
    assert.deepEqual(p.programmed, [B, C]);
    assert.deepEqual(p.counters, { updates: 1, verifies: 1, failed: 0 });
  });

  test('a change after a quiet period goes at once; a change back to what is programmed costs nothing', () => {
    const p = new GuardPacer();
    p.want([A]);
    p.start(0);
    p.finish(1, true);
    p.want([A, B]);
    p.want([A]);
    assert.equal(p.nextDeadline(), DEFAULT_GUARD_PACER.verifyEveryMs, 'back to the programmed set: only the periodic verify');
    p.want([C]);
    assert.equal(p.nextDeadline(), 1000);
    assert.deepEqual(p.start(5000), { mode: 'update', allow: [C] });
  });

  test('the periodic verify; a change due together with it is written by the verify', () => {
    const p = new GuardPacer({ ...DEFAULT_GUARD_PACER, verifyEveryMs: 10_000 });
    p.want([A]);
    p.start(0);
    p.finish(1, true);
    assert.deepEqual(p.start(10_000), { mode: 'verify', allow: [A] });
    p.finish(10_002, true);
    p.want([B]);
    assert.deepEqual(p.start(20_000), { mode: 'verify', allow: [B] });
  });

  test('failures: state unknown, retried as a verify after a doubling back-off, never sooner than the window', () => {
    const p = new GuardPacer({ minIntervalMs: 1000, verifyEveryMs: 30_000, retryMinMs: 500, retryMaxMs: 4000 });
    p.want([A]);
    p.start(0);
    p.finish(1, true);
    p.want([B]);
    p.start(1000);
    p.finish(1010, false);
    assert.equal(p.status, 'failed');
    assert.equal(p.programmed, null);
    const rows: Array<[number, number]> = [];
    let t = 1010;
    for (let i = 0; i < 5; i++) {
      const due = p.nextDeadline()!;
      rows.push([due - t, p.consecutiveFailures]);
      assert.equal(p.start(due)?.mode, 'verify');
      t = due + 10;
      p.finish(t, false);
    }
    // back-off 500 (but the window from the start 1000 → 990 after a finish 10 ms later), 1000, 2000, 4000, 4000
    assert.deepEqual(rows, [[990, 1], [1000, 2], [2000, 3], [4000, 4], [4000, 5]]);
    p.start(p.nextDeadline()!);
    p.finish(t + 5000, true);
    assert.equal(p.status, 'ok');
    assert.deepEqual(p.programmed, [B]);
  });

  test('finish() without a transaction is a bug', () => {
    assert.throws(() => new GuardPacer().finish(0, true), /without a transaction/);
  });

  test('normalizeAllow sorts and deduplicates', () => {
    assert.deepEqual(normalizeAllow([C, A, C, B]), [A, B, C]);
  });

  test('simulation: 64 members churning for 10 min — gaps ≥ 1 s, removals within 1 s + one transaction, final set written', () => {
    const rnd = seededRng(7);
    const p = new GuardPacer();
    const members = new Set<string>();
    const TX_MS = 40; // a transaction's duration
    let inFlight: { end: number; allow: string[] } | undefined;
    let lastStart = -Infinity;
    const kernel = new Set<string>();
    const leftAt = new Map<string, number>();
    let worstRemovalMs = 0;
    let starts = 0;
    for (let now = 0; now < 600_000; now += 5) {
      if (inFlight && now >= inFlight.end) {
        kernel.clear();
        for (const a of inFlight.allow) kernel.add(a);
        p.finish(now, true);
        inFlight = undefined;
        for (const [ip, t] of leftAt) {
          if (kernel.has(ip)) continue;
          worstRemovalMs = Math.max(worstRemovalMs, now - t);
          leftAt.delete(ip);
        }
      }
      // A burst every ~2 s: up to 8 joins/leaves at once (a join storm, a flapping member).
      if (rnd() < 0.0025) {
        for (let i = 0, n = 1 + Math.floor(rnd() * 8); i < n; i++) {
          const ip = `10.0.${Math.floor(rnd() * 64)}.1`;
          if (members.delete(ip)) leftAt.set(ip, leftAt.get(ip) ?? now);
          else {
            members.add(ip);
            leftAt.delete(ip);
          }
        }
        p.want([...members]);
      }
      const job = p.start(now);
      if (job) {
        assert.ok(now - lastStart >= 1000, `two transactions ${now - lastStart} ms apart at ${now}`);
        lastStart = now;
        starts++;
        inFlight = { end: now + TX_MS, allow: job.allow };
      }
    }
    for (let now = 600_000; inFlight || p.nextDeadline()! <= now; now += 5) {
      if (inFlight && now >= inFlight.end) {
        kernel.clear();
        for (const a of inFlight.allow) kernel.add(a);
        p.finish(now, true);
        inFlight = undefined;
        continue;
      }
      const job = p.start(now);
      if (job) inFlight = { end: now + TX_MS, allow: job.allow };
    }
    assert.deepEqual([...kernel].sort(), normalizeAllow([...members]), 'the final member set is programmed');
    assert.ok(worstRemovalMs <= 1000 + TX_MS + 5, `a removed member kept access ${worstRemovalMs} ms`);
    assert.ok(starts < 600, `${starts} transactions in 10 min`);
  });
});
