/**
 * docker's container, restart and placement flags → spec fields (src/cli/task-flags.ts), and
 * the inspect `--format` templates (src/cli/template.ts): table tests of the accepted forms and
 * of the refusals, each naming the flag.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { parseEntrypoint, parseMount, parsePlacementPref, taskFieldsFrom } from '../../../src/cli/task-flags.js';
import { formatted, renderTemplate } from '../../../src/cli/format.js';

describe('--mount', () => {
  const cases: Array<[string, unknown]> = [
    ['type=bind,source=/srv,target=/data,readonly', { type: 'bind', source: '/srv', target: '/data', readOnly: true }],
    ['type=bind,src=/srv,dst=/data,ro=false', { type: 'bind', source: '/srv', target: '/data', readOnly: false }],
    ['source=vol1,target=/v', { type: 'volume', source: 'vol1', target: '/v' }],
    ['type=volume,destination=/anon', { type: 'volume', target: '/anon' }],
    ['type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1777', { type: 'tmpfs', target: '/t', tmpfsSizeBytes: 64 * 2 ** 20, tmpfsMode: 0o1777 }],
  ];
  for (const [s, want] of cases) test(s, () => assert.deepEqual(parseMount(s), want));
  const bad: Array<[string, RegExp]> = [
    ['type=npipe,target=/x', /type must be bind, volume or tmpfs/],
    ['type=bind,source=/a', /target required/],
    ['type=bind,target=/a,bind-propagation=shared', /unsupported key "bind-propagation"/],
    ['type=tmpfs,target=/t,tmpfs-mode=999', /tmpfs-mode must be octal/],
    ['type=bind,target=/a,readonly=maybe', /expected true or false/],
    ['type=bind,source=,target=/a', /source needs a value/],
  ];
  for (const [s, re] of bad) test(`refused: ${s}`, () => assert.throws(() => parseMount(s), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_BAD_ARGUMENT' && re.test(e.message)));
});

describe('other flags', () => {
  test('--entrypoint is split like a shell; "" clears', () => {
    assert.deepEqual(parseEntrypoint('sh -c "echo hi"'), ['sh', '-c', 'echo hi']);
    assert.deepEqual(parseEntrypoint(''), []);
  });
  test('--placement-pref spread=…', () => {
    assert.deepEqual(parsePlacementPref('spread=node.labels.zone'), { spread: 'node.labels.zone' });
    assert.throws(() => parsePlacementPref('pack=node.labels.zone'), /not spread=node\.labels\.KEY/);
  });
  test('create: every flag lands in its field', () => {
    const f = taskFieldsFrom({
      mount: ['type=tmpfs,target=/t'], label: ['a=1'], containerLabel: ['b=2', 'c'], hostname: '{{.Service.Name}}-{{.Task.Slot}}',
      workdir: '/w', user: 'nobody', entrypoint: 'sh -c', dnsOption: ['ndots:2'], readOnly: true, init: true,
      restartCondition: 'none', restartDelay: '2s', restartMaxAttempts: '3', restartWindow: '1m', placementPref: ['spread=node.labels.zone'],
      replicasMaxPerNode: '2',
    });
    assert.deepEqual(f, {
      container: {
        mounts: [{ type: 'tmpfs', target: '/t' }], labels: { b: '2', c: '' }, dnsOptions: ['ndots:2'], hostname: '{{.Service.Name}}-{{.Task.Slot}}',
        workdir: '/w', user: 'nobody', entrypoint: ['sh', '-c'], readOnly: true, init: true,
      },
      labels: { a: '1' },
      restartPolicy: { condition: 'none', delayMs: 2000, maxAttempts: 3, windowMs: 60000 },
      preferences: [{ spread: 'node.labels.zone' }],
      maxReplicasPerNode: 2,
    });
  });
  test('update: -rm before -add, mounts removed by target, 0 removes the per-node limit, --no-read-only', () => {
    const base = {
      container: { mounts: [{ type: 'tmpfs', target: '/a' }, { type: 'tmpfs', target: '/b' }], labels: { x: '1', y: '2' }, dnsOptions: ['ndots:2'], readOnly: true },
      labels: { keep: '1', drop: '2' }, restartPolicy: { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 },
      preferences: [{ spread: 'node.labels.a' }], maxReplicasPerNode: 3,
    };
    const f = taskFieldsFrom({
      mountRm: ['/a'], mountAdd: ['type=volume,target=/c'], containerLabelRm: ['x'], containerLabelAdd: ['z=3'], dnsOptionRm: ['ndots:2'],
      labelRm: ['drop'], readOnly: false, placementPrefRm: ['spread=node.labels.a'], placementPrefAdd: ['spread=node.labels.b'],
      replicasMaxPerNode: '0', restartCondition: 'on-failure',
    }, base);
    assert.deepEqual(f, {
      container: { mounts: [{ type: 'tmpfs', target: '/b' }, { type: 'volume', target: '/c' }], labels: { y: '2', z: '3' }, dnsOptions: [], readOnly: false },
      labels: { keep: '1' },
      restartPolicy: { condition: 'on-failure', delayMs: 5000, maxAttempts: 0, windowMs: 0 },
      preferences: [{ spread: 'node.labels.b' }],
    });
  });
});

describe('--format templates', () => {
  const v = { name: 'web', ports: [{ target: 8000, published: 30000 }], spec: { container: { hostname: 'h' } } };
  const cases: Array<[string, string]> = [
    ['{{.name}}', 'web'],
    ['{{.Name}}', 'web'],
    ['{{json .ports}}', '[{"target":8000,"published":30000}]'],
    ['{{.spec.container.hostname}} x', 'h x'],
    ['{{.Spec.Container}}', '{"hostname":"h"}'],
    ['{{json .}}', JSON.stringify(v)],
  ];
  for (const [tpl, want] of cases) test(tpl, () => assert.equal(renderTemplate(tpl, v), want));
  test('unknown fields and actions are refused', () => {
    assert.throws(() => renderTemplate('{{.nope}}', v), /no field "nope"/);
    assert.throws(() => renderTemplate('{{range .ports}}', v), /unsupported template action/);
  });
  test('list commands: a template prints one line per item, json prints JSON, table falls through', () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string) => out.push(c) > 0) as typeof process.stdout.write;
    try {
      assert.equal(formatted([{ name: 'a' }, { name: 'b' }], '{{.Name}}'), true);
      assert.equal(formatted({ name: 'c' }, 'x={{.name}}'), true);
      assert.equal(formatted([1], 'json'), true);
      assert.equal(formatted([1], undefined), false);
      assert.equal(formatted([1], 'table'), false);
    } finally {
      process.stdout.write = write;
    }
    assert.deepEqual(out, ['a\nb\n', 'x=c\n', '[\n  1\n]\n']);
    assert.throws(() => formatted([], 'yaml'), /use table, json or a template/);
  });
});
