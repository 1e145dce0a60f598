import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConstraints, matchConstraint, parseConstraint } from '../../../src/core/scheduler/constraint.js';
import { IndexedHeap } from '../../../src/core/scheduler/heap.js';
import { isMeshError } from '../../../src/core/errors.js';
import { node } from '../orchestrator/fixtures.js';

const n1 = node('id-1', { hostname: 'host-a', role: 'manager', labels: { zone: 'eu-1', disk: 'ssd' } });

describe('constraints', () => {
  const table: Array<[string, boolean]> = [
    ['node.labels.zone==eu-1', true],
    ['node.labels.zone == EU-1', true], // values compare case-insensitively (swarmkit)
    ['node.labels.zone!=eu-1', false],
    ['node.labels.zone==us-1', false],
    ['node.labels.missing==x', false], // missing label fails ==
    ['node.labels.missing!=x', true], // ... and satisfies !=
    ['node.role==manager', true],
    ['node.role!=manager', false],
    ['node.role==worker', false],
    ['node.hostname==host-a', true],
    ['node.hostname!=host-a', false],
    ['node.id==id-1', true],
    ['node.id==id-2', false],
    ['NODE.LABELS.disk==ssd', true],
  ];
  for (const [expr, want] of table) {
    test(`${expr} → ${want}`, () => assert.equal(matchConstraint(parseConstraint(expr), n1), want));
  }

  const bad = ['', 'node.labels.zone', 'node.labels.zone=a', 'node.role==admin', 'engine.foo==1', 'node.labels.==x', 'node.labels.a==', 'node.id==a==b'];
  for (const expr of bad) {
    test(`rejects ${JSON.stringify(expr)}`, () => {
      assert.throws(() => parseConstraint(expr), (e: unknown) => isMeshError(e) && e.code === 'MESHD_BAD_ARGUMENT');
    });
  }

  test('compileConstraints: all must hold; empty list matches everything', () => {
    assert.equal(compileConstraints([])(n1), true);
    assert.equal(compileConstraints(['node.role==manager', 'node.labels.disk==ssd'])(n1), true);
    assert.equal(compileConstraints(['node.role==manager', 'node.labels.disk==hdd'])(n1), false);
  });

  test('label lookups do not reach the prototype', () => {
    assert.equal(matchConstraint(parseConstraint('node.labels.toString!=x'), n1), true);
    assert.equal(matchConstraint(parseConstraint('node.labels.constructor==x'), n1), false);
  });
});

describe('IndexedHeap', () => {
  test('pops in order; update and remove keep the invariant', () => {
    const items = Array.from({ length: 200 }, (_, i) => ({ k: (i * 7919) % 211 }));
    const h = new IndexedHeap<{ k: number }>((a, b) => a.k < b.k, items);
    items[5]!.k = -1;
    h.update(items[5]!);
    h.remove(items[6]!);
    items[7]!.k = 1000;
    h.update(items[7]!);
    const out: number[] = [];
    for (let x = h.pop(); x; x = h.pop()) out.push(x.k);
    assert.equal(out.length, 199);
    assert.equal(out[0], -1);
    assert.equal(out[out.length - 1], 1000);
    for (let i = 1; i < out.length; i++) assert.ok(out[i - 1]! <= out[i]!);
  });
});
