/**
 * `netctl debug lb` on IPVS (issue 14 item 5): the KERNEL column shows what IPVS holds at weight 0
 * (draining tasks keep their established connections there), and every drift line is listed —
 * including a stray service that belongs to no frontend. Pure rendering of a /v1/lb/status reply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderLbStatus, type LbStatusReply } from '../../../src/cli/lb-commands.js';

test('debug lb on IPVS: weight-0 reals in the KERNEL column, a removed real flagged DRIFT, stray services listed', () => {
  const r: LbStatusReply = {
    node: 'n1', backend: 'ipvs', active: true, applies: 3, badRecords: 0, ingress: null,
    namespaces: [{
      netns: 'mlab-vm-n1-ingress', kind: 'ingress', task: null, lastApply: null, error: null, conflicts: [], held: [],
      frontends: [{
        key: 'ingress tcp 8080', service: 'web', serviceId: 'svcweb', held: [],
        backends: [
          { task: 'web1', target: '10.255.0.11:80', state: 'active', local: true },
          { task: 'web2', target: '10.255.0.12:80', state: 'active', local: false },
          { task: 'web3', target: '10.255.0.13:80', state: 'draining', local: false },
        ],
        kernel: ['10.255.0.11:80'], kernelDraining: ['10.255.0.13:80'],
      }],
      drift: ['ingress tcp 8080: targets 10.255.0.11:80, want 10.255.0.11:80,10.255.0.12:80', 'stray IPVS service fwmark 300 (10.0.1.7:80): no frontend in the mark table routes to it'],
    }],
  };
  const out = renderLbStatus(r);
  assert.match(out, /10\.255\.0\.11:80 10\.255\.0\.13:80\(weight 0\)\s+DRIFT/);
  assert.match(out, /mlab-vm-n1-ingress: ingress tcp 8080: targets 10\.255\.0\.11:80, want 10\.255\.0\.11:80,10\.255\.0\.12:80/);
  assert.match(out, /mlab-vm-n1-ingress: stray IPVS service fwmark 300/);
});
