import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRng } from '../../../src/core/clock.js';
import { GOSSIP_PRESETS, resolveGossipConfig } from '../../../src/core/gossip/config.js';
import { suspicionTimeout } from '../../../src/core/gossip/formulas.js';
import { GossipNode } from '../../../src/core/gossip/index.js';
import { decodePacket, encode } from '../../../src/core/gossip/wire.js';
import { allSee, cluster } from './helpers.js';

describe('SWIM state machine (simulated network)', () => {
  test('join through one seed: everyone sees everyone; join-ok reported', () => {
    const { sim, names } = cluster(6, 1);
    assert.ok(allSee(sim, names, names, 'alive'));
    const events: string[] = [];
    sim.onEvent = (_n, e) => events.push(e.type);
    sim.add('late');
    sim.join('late', ['n3']);
    assert.ok(sim.runUntilTrue(() => allSee(sim, [...names, 'late'], [...names, 'late'], 'alive'), 10_000) !== undefined);
    assert.ok(events.includes('join-ok'));
  });

  test('join to an address that does not answer reports join-failed', () => {
    const { sim } = cluster(2, 2);
    const events: string[] = [];
    sim.onEvent = (_n, e) => events.push(e.type);
    sim.add('x');
    sim.act('x', (g, now) => g.join(['10.250.0.1:7946'], now));
    sim.runFor(2000);
    assert.ok(events.includes('join-failed'));
  });

  test('a killed member is suspected, then declared dead by all within the suspicion bound', () => {
    const { sim, names, cfg } = cluster(8, 3);
    sim.kill('n5');
    const t0 = sim.now;
    const t = sim.runUntilTrue(() => allSee(sim, names, ['n5'], 'dead'), 30_000, 10);
    assert.ok(t !== undefined);
    const max = cfg.suspicionMaxTimeoutMult * suspicionTimeout(cfg.suspicionMult, 8, cfg.probeIntervalMs);
    assert.ok(t - t0 <= 3 * cfg.probeIntervalMs + max + 1000, `detected in ${t - t0} ms`);
    // Some member's suspicion timed out (the others may have heard the death first); nobody else was declared.
    const expired = names.filter((n) => n !== 'n5').map((n) => sim.get(n).node.metrics().suspicionsExpired);
    assert.ok(expired.reduce((a, b) => a + b, 0) >= 1, `suspicions expired per node: ${expired.join(' ')}`);
    assert.ok(expired.every((x) => x <= 1), `only n5 was declared dead: ${expired.join(' ')}`);
  });

  test('SIGSTOP below the suspicion timeout: the paused member refutes, zero false deaths', () => {
    const { sim, names, cfg } = cluster(8, 4);
    let deaths = 0;
    let suspects = 0;
    sim.onEvent = (_n, e) => {
      if (e.type === 'member-dead') deaths++;
      if (e.type === 'member-suspect' && e.name === 'n2') suspects++;
    };
    const inc0 = sim.get('n2').node.member('n2')!.incarnation;
    const min = suspicionTimeout(cfg.suspicionMult, 8, cfg.probeIntervalMs);
    for (let round = 0; round < 5; round++) {
      sim.pause('n2');
      sim.runFor(Math.floor(min * 0.7));
      sim.resume('n2');
      sim.runFor(3000);
    }
    assert.equal(deaths, 0);
    assert.deepEqual(names.map((n) => sim.get(n).node.metrics().suspicionsExpired), names.map(() => 0));
    assert.ok(suspects > 0, 'the pause was long enough to be suspected');
    assert.ok(sim.get('n2').node.member('n2')!.incarnation > inc0, 'refuted with a higher incarnation');
    assert.ok(allSee(sim, names, names, 'alive'));
  });

  test('partition 2|3 beyond the suspicion timeout, then heal: merges by itself (reconnects)', () => {
    const { sim, names } = cluster(5, 5);
    const a = ['n0', 'n1'];
    const b = ['n2', 'n3', 'n4'];
    sim.partition([a, b]);
    assert.ok(sim.runUntilTrue(() => allSee(sim, a, b, 'dead') && allSee(sim, b, a, 'dead'), 30_000) !== undefined, 'each side declares the other dead');
    sim.heal();
    const t0 = sim.now;
    const t = sim.runUntilTrue(() => allSee(sim, names, names, 'alive'), 30_000);
    assert.ok(t !== undefined, 'merged');
    assert.ok(t - t0 <= 3 * sim.get('n0').node.config.reconnectIntervalMs + 2000, `merged after ${t - t0} ms`);
  });

  test('UDP blocked, streams fine: TCP fallback pings keep everyone alive', () => {
    const { sim, names } = cluster(5, 6);
    let suspects = 0;
    sim.onEvent = (_n, e) => {
      if (e.type === 'member-suspect' || e.type === 'member-dead') suspects++;
    };
    const m0 = names.map((n) => sim.get(n).node.metrics());
    sim.udpBlocked = true;
    sim.runFor(15_000);
    assert.equal(suspects, 0);
    assert.ok(allSee(sim, names, names, 'alive'));
    sim.udpBlocked = false;
    // The counters say which path saved them: every node's escalated probes were answered over TCP, none over UDP.
    names.forEach((n, i) => {
      const m = sim.get(n).node.metrics();
      assert.ok(m.tcpFallbackAcks - m0[i]!.tcpFallbackAcks > 0, `${n}: TCP fallback acks`);
      assert.equal(m.indirectAcks, m0[i]!.indirectAcks, `${n}: no UDP ack while UDP is blocked`);
      assert.ok(m.indirectProbes - m0[i]!.indirectProbes >= m.tcpFallbackAcks - m0[i]!.tcpFallbackAcks, `${n}: only escalated probes use TCP`);
    });
  });

  test('a member reachable over TCP only, falsely suspected (a stalled prober), refutes through the prober\'s push-pull (40 seeds)', () => {
    // It cannot hear the suspicion over UDP (neither gossip nor the buddy ping reaches it), so before swim.ts
    // tcpAck's push-pull it was declared dead while answering every TCP ping (gossip lab, UDP-only case, under load).
    const dead: string[] = [];
    let syncs = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const { sim, names } = cluster(8, 100 + seed);
      sim.udpBlockedNodes.add('n7');
      sim.runFor(2000);
      sim.pause('n7'); // every TCP ping times out now: whoever probes n7 suspects it
      const t = sim.runUntilTrue(() => names.some((n) => n !== 'n7' && sim.get(n).node.member('n7')?.state === 'suspect'), 10_000, 10);
      assert.ok(t !== undefined, `seed ${seed}: nobody suspected the paused member`);
      sim.resume('n7');
      let died = false;
      sim.onEvent = (n, e) => (e.type === 'member-dead' && e.name === 'n7' ? (died = true) : undefined);
      sim.runFor(15_000);
      if (died || !allSee(sim, names, ['n7'], 'alive')) dead.push(`seed ${seed}`);
      for (const n of names) syncs += sim.get(n).node.metrics().tcpRefuteSyncs;
    }
    console.log(`refutation push-pulls: ${syncs} over 40 seeds`);
    assert.deepEqual(dead, [], 'declared dead while answering TCP pings');
  });

  test('without the TCP fallback the same block brings deaths (the fallback is what saves them)', () => {
    const { sim } = cluster(4, 7, { tcpFallback: 0 });
    let deaths = 0;
    sim.onEvent = (_n, e) => (e.type === 'member-dead' ? deaths++ : undefined);
    sim.udpBlocked = true;
    sim.runFor(15_000);
    assert.ok(deaths > 0);
  });

  test('graceful leave: "left" everywhere, then reaped after deadNodeReclaimMs', () => {
    const { sim, names } = cluster(5, 8, { deadNodeReclaimMs: 5000 });
    sim.act('n4', (g, now) => g.leave(now));
    const rest = names.slice(0, 4);
    assert.ok(sim.runUntilTrue(() => allSee(sim, rest, ['n4'], 'left'), 5000) !== undefined);
    sim.kill('n4');
    assert.ok(sim.runUntilTrue(() => rest.every((n) => sim.get(n).node.member('n4') === undefined), 10_000) !== undefined);
    sim.runFor(3000);
    assert.ok(allSee(sim, rest, rest, 'alive'), 'no one else hurt');
  });

  test('10% loss on 12 nodes for a minute: no false deaths', () => {
    const { sim, names } = cluster(12, 9, {}, 0.1);
    let deaths = 0;
    sim.onEvent = (_n, e) => (e.type === 'member-dead' ? deaths++ : undefined);
    sim.runFor(60_000);
    assert.equal(deaths, 0);
    assert.ok(allSee(sim, names, names, 'alive'));
  });
});

describe('SWIM rules on one node', () => {
  const cfg = resolveGossipConfig('local');
  const mk = (now = 0) => {
    const g = new GossipNode({ name: 'me', addr: 'me:1', config: cfg, rng: seededRng(5), now });
    g.bootstrap(['a', 'b', 'c', 'd', 'e', 'x'].map((n) => ({ name: n, addr: `${n}:1`, incarnation: 1 })), now);
    return g;
  };
  const pkt = (m: Parameters<typeof encode>[0]) => encode(m);

  test('refutation: suspected → incarnation bumped above the accusation and alive broadcast first', () => {
    const g = mk();
    g.handlePacket('a:1', pkt({ type: 'suspect', incarnation: 4, node: 'me', from: 'a' }), 10);
    assert.equal(g.member('me')!.incarnation, 5);
    assert.equal(g.health(), 1, 'refuting costs local health (Lifeguard)');
    g.tick(g.nextDeadline());
    const out = g.drain().filter((o) => o.kind === 'udp');
    assert.ok(out.length > 0);
    const first = decodePacket(out[0]!.bytes);
    assert.ok(first.ok);
    const parts = first.msg.type === 'compound' ? first.msg.parts.map((p) => decodePacket(p)) : [first];
    assert.ok(parts.some((p) => p.ok && p.msg.type === 'alive' && p.msg.node === 'me' && p.msg.incarnation === 5));
  });

  test('old news is ignored: lower incarnation cannot suspect, alive cannot resurrect a dead member at the same incarnation', () => {
    const g = mk();
    g.handlePacket('a:1', pkt({ type: 'suspect', incarnation: 0, node: 'x', from: 'a' }), 1);
    assert.equal(g.member('x')!.state, 'alive');
    g.handlePacket('a:1', pkt({ type: 'dead', incarnation: 1, node: 'x', from: 'a', left: false }), 2);
    assert.equal(g.member('x')!.state, 'dead');
    g.handlePacket('a:1', pkt({ type: 'alive', incarnation: 1, node: 'x', addr: 'x:1' }), 3);
    assert.equal(g.member('x')!.state, 'dead');
    g.handlePacket('a:1', pkt({ type: 'alive', incarnation: 2, node: 'x', addr: 'x:1' }), 4);
    assert.equal(g.member('x')!.state, 'alive');
  });

  test('Lifeguard: independent confirmations shrink the suspicion timeout from max to min', () => {
    const n = 7;
    const min = suspicionTimeout(cfg.suspicionMult, n, cfg.probeIntervalMs);
    const max = cfg.suspicionMaxTimeoutMult * min;
    const deadAt = (confirmers: string[]): number => {
      const g = mk(0);
      g.handlePacket('a:1', pkt({ type: 'suspect', incarnation: 1, node: 'x', from: 'a' }), 0);
      for (const c of confirmers) g.handlePacket(`${c}:1`, pkt({ type: 'suspect', incarnation: 1, node: 'x', from: c }), 0);
      for (let t = 0; t <= max + 10; t += 10) {
        g.tick(t);
        // keep the probes of others from interfering: members answer nothing, but x is already suspect
        if (g.member('x')!.state === 'dead') return t;
      }
      return Infinity;
    };
    const none = deadAt([]);
    const one = deadAt(['b']);
    const two = deadAt(['b', 'c']);
    const dup = deadAt(['a', 'a']);
    assert.ok(none >= max && none <= max + 10, `no confirmation: ${none} ≈ max ${max}`);
    assert.ok(one < none && one > min, `one confirmation: ${one}`);
    assert.ok(two >= min && two <= min + 10, `k=2 confirmations: ${two} ≈ min ${min}`);
    assert.equal(dup, none, 'repeats from the same member are not independent');
  });

  test('local health: a node whose probes go unanswered (no nacks) raises its score and slows its probing', () => {
    const g = mk(0);
    let pings = 0;
    let t = 0;
    const countPings = (until: number): number => {
      pings = 0;
      for (; t < until; t += 5) {
        g.tick(t);
        for (const o of g.drain()) {
          if (o.kind !== 'udp') continue;
          const d = decodePacket(o.bytes);
          if (!d.ok) continue;
          const msgs = d.msg.type === 'compound' ? d.msg.parts.map((p) => decodePacket(p)) : [d];
          if (msgs.some((m) => m.ok && m.msg.type === 'ping')) pings++;
        }
      }
      return pings;
    };
    const early = countPings(2000);
    countPings(8000);
    assert.equal(g.health(), cfg.awarenessMaxMultiplier - 1, 'score saturates at max-1');
    const late = countPings(10_000);
    assert.ok(late * 2 < early, `probing slowed: ${early} pings in the first 2 s, ${late} in 2 s at full score`);
  });

  test('pings for another node are dropped and counted; acks for unknown probes are stale', () => {
    const g = mk();
    g.handlePacket('a:1', pkt({ type: 'ping', seq: 1, target: 'someone-else', source: 'a', sourceAddr: 'a:1' }), 1);
    g.handlePacket('a:1', pkt({ type: 'ack', seq: 12345 }), 1);
    assert.equal(g.metrics().drops['wrong-target'], 1);
    assert.equal(g.metrics().staleAcks, 1);
    assert.equal(g.drain().length, 0);
  });

  test('a relay answers an indirect ping with a nack when the target stays silent', () => {
    const g = mk();
    g.handlePacket('a:1', pkt({ type: 'indirect-ping', seq: 77, target: 'x', targetAddr: 'x:1', source: 'a', sourceAddr: 'a:1', nack: true }), 0);
    const sent = g.drain();
    assert.ok(sent.some((o) => o.to === 'x:1'));
    g.tick(cfg.probeTimeoutMs);
    const nacks = g.drain().filter((o) => o.to === 'a:1' && o.kind === 'udp').map((o) => decodePacket(o.kind === 'udp' ? o.bytes : new Uint8Array(0))).filter((d) => d.ok && (d.msg.type === 'nack' || (d.msg.type === 'compound' && d.msg.parts.some((p) => { const q = decodePacket(p); return q.ok && q.msg.type === 'nack'; }))));
    assert.equal(nacks.length, 1);
  });

  test('an escalated probe answered through a helper counts as an indirect ack, not a TCP one', () => {
    const g = mk(0);
    let seq: number | undefined;
    let target = '';
    let sentAt = 0;
    for (let t = 0; seq === undefined && t < 5000; t += 5) {
      g.tick((sentAt = t));
      for (const o of g.drain()) {
        const d = o.kind === 'udp' ? decodePacket(o.bytes) : undefined;
        const msgs = !d?.ok ? [] : d.msg.type === 'compound' ? d.msg.parts.map((p) => decodePacket(p)) : [d];
        for (const m of msgs) if (m.ok && m.msg.type === 'ping') ({ seq, target } = m.msg);
      }
    }
    assert.ok(seq !== undefined, 'a probe was sent');
    g.tick(sentAt + cfg.probeTimeoutMs); // no direct ack: escalate
    assert.equal(g.metrics().indirectProbes, 1);
    g.handlePacket('a:1', pkt({ type: 'ack', seq }), sentAt + cfg.probeTimeoutMs + 1); // relayed by helper a
    assert.deepEqual([g.metrics().indirectAcks, g.metrics().tcpFallbackAcks, g.metrics().probeFailures], [1, 0, 0], `probe of ${target}`);
  });

  test('gossip packets are compound packets filled up to maxPacketBytes, never above', () => {
    const g = mk(0);
    for (let i = 0; i < 150; i++) g.handlePacket('a:1', pkt({ type: 'alive', incarnation: 1, node: `new-node-${i}`, addr: `10.1.${i}.1:7946` }), 0);
    g.drain();
    const sizes: number[] = [];
    for (let t = 1; t < 2000; t += 10) {
      g.tick(t);
      for (const o of g.drain()) if (o.kind === 'udp') sizes.push(o.bytes.length);
    }
    assert.ok(sizes.length > 0);
    assert.ok(Math.max(...sizes) <= cfg.maxPacketBytes, `max ${Math.max(...sizes)}`);
    assert.ok(sizes.filter((x) => x > cfg.maxPacketBytes - 64).length >= 3, 'full packets were built');
  });

  test('lan preset on a single node: nothing to probe, deadlines finite', () => {
    const g = new GossipNode({ name: 'solo', addr: 'solo:1', config: GOSSIP_PRESETS.lan, rng: seededRng(1), now: 0 });
    assert.ok(Number.isFinite(g.nextDeadline()));
    g.tick(5000);
    assert.deepEqual(g.drain(), []);
  });
});
