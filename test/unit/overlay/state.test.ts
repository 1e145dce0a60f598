/** The overlay's desired input (pure): what each event does to the input of the next reconcile. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OverlayState } from '../../../src/core/overlay/state.js';
import type { OverlayNetwork } from '../../../src/core/overlay/model.js';
import { isMeshError } from '../../../src/core/errors.js';

const A: OverlayNetwork = { id: 'aaaa', name: 'a', vni: 4096, subnet: '10.0.1.0/24', gateway: '10.0.1.1' };
const B: OverlayNetwork = { id: 'bbbb', name: 'b', vni: 4097, subnet: '10.0.2.0/24', gateway: '10.0.2.1' };

describe('OverlayState', () => {
  test('the input holds hosted networks, remotes and members (deduplicated, sorted)', () => {
    const s = new OverlayState();
    s.handle({ type: 'network-define', network: A });
    s.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } });
    s.handle({ type: 'remote-add', key: 'n2/t2', endpoint: { network: 'aaaa', ip: '10.0.1.3', mac: '02:42:0a:00:01:03', nodeIp: '192.168.1.2' } });
    s.handle({ type: 'members', underlayIps: ['192.168.1.2', '192.168.1.1', '192.168.1.2'] });
    const input = s.input();
    assert.deepEqual(input.networks.map((n) => n.id), ['aaaa']);
    assert.deepEqual(input.members, ['192.168.1.1', '192.168.1.2']);
    assert.equal(input.remote.length, 1);
    s.handle({ type: 'remote-remove', key: 'n2/t2' });
    assert.equal(s.input().remote.length, 0);
  });
  test('lazy hosting: a network is hosted while it has a local endpoint or is attached', () => {
    const s = new OverlayState();
    s.handle({ type: 'network-define', network: A });
    s.handle({ type: 'network-define', network: B });
    assert.deepEqual(s.hosted(), []);
    s.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'bbbb', ip: '10.0.2.2', mac: '02:42:0a:00:02:02' } });
    s.handle({ type: 'network-attach', networkId: 'aaaa' });
    assert.deepEqual(s.hosted().map((n) => n.id), ['aaaa', 'bbbb']);
    s.handle({ type: 'local-remove', taskId: 't1' });
    s.handle({ type: 'network-detach', networkId: 'aaaa' });
    assert.deepEqual(s.hosted(), []);
  });
  test('forgetting a network drops its remote endpoints: defined anew, it never programs stale ones (chaos seed 13)', () => {
    // The node's last task on A left (leave the gossip network, forget the overlay network); while it was
    // away, gossip told it nothing about A, so the remotes it held are unknown-stale. A task lands here
    // again: only what gossip sends from now on may be programmed.
    const s = new OverlayState();
    s.handle({ type: 'network-define', network: A });
    s.handle({ type: 'network-define', network: B });
    s.handle({ type: 'remote-add', key: 'aaaa/t7', endpoint: { network: 'aaaa', ip: '10.0.1.7', mac: '02:42:0a:00:01:07', nodeIp: '192.168.1.5' } });
    s.handle({ type: 'remote-add', key: 'bbbb/t8', endpoint: { network: 'bbbb', ip: '10.0.2.8', mac: '02:42:0a:00:02:08', nodeIp: '192.168.1.3' } });
    s.handle({ type: 'network-forget', networkId: 'aaaa' });
    s.handle({ type: 'network-define', network: A });
    s.handle({ type: 'local-add', taskId: 't1', endpoint: { network: 'aaaa', ip: '10.0.1.2', mac: '02:42:0a:00:01:02' } });
    s.handle({ type: 'remote-add', key: 'aaaa/t6', endpoint: { network: 'aaaa', ip: '10.0.1.6', mac: '02:42:0a:00:01:06', nodeIp: '192.168.1.2' } });
    assert.deepEqual(s.input().remote.map((e) => e.ip).sort(), ['10.0.1.6', '10.0.2.8'], 'B keeps its remote; A only what came after');
  });
  test('an unknown event is a clear error', () => {
    assert.throws(() => new OverlayState().handle({ type: 'nope' } as never), (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT');
  });
});
