/** Secret/config references (src/core/spec/files.ts), the service flags and the compose keys. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import { parseFileRefFlag, parseServiceSpec, taskSpecOf } from '../../../src/core/spec/index.js';
import { checkRuntimeSupport } from '../../../src/core/spec/runtime.js';
import { parseCompose } from '../../../src/core/compose/parse.js';
import { translateStack } from '../../../src/core/compose/translate.js';
import { editFiles, filesFrom } from '../../../src/cli/file-flags.js';

const code = (c: string) => (e: unknown) => e instanceof MeshError && e.code === c;

describe('service spec secrets/configs', () => {
  test('normalized: default targets, owner and mode (secrets 0400, configs 0444)', () => {
    const s = parseServiceSpec({ name: 'a', image: 'x', runtime: 'docker', secrets: [{ source: 'pw' }, { source: 'k', target: 'key.pem', mode: 0o440, uid: 10 }], configs: [{ source: 'c' }, { source: 'd', target: '/etc/d.conf' }] });
    assert.deepEqual(s.secrets, [
      { source: 'pw', target: '/run/secrets/pw', uid: 0, gid: 0, mode: 0o400 },
      { source: 'k', target: '/run/secrets/key.pem', uid: 10, gid: 0, mode: 0o440 },
    ]);
    assert.deepEqual(s.configs?.map((c) => [c.target, c.mode]), [['/c', 0o444], ['/etc/d.conf', 0o444]]);
    assert.deepEqual(taskSpecOf(s).secrets, s.secrets, 'a change of secrets replaces tasks (rotation)');
    assert.equal(parseServiceSpec({ name: 'a', image: 'x', secrets: [] }).secrets, undefined);
  });

  test('refusals name the field', () => {
    for (const bad of [
      { secrets: [{ source: 'a b' }] },
      { secrets: [{ source: 'a' }, { source: 'b', target: 'a' }] },
      { secrets: [{ source: 'a', target: '../etc/passwd' }] },
      { secrets: [{ source: 'a', mode: 0o1777 }] },
      { configs: [{ source: 'a', target: '/' }] },
      { secrets: [{ source: 'a', extra: 1 }] },
    ]) assert.throws(() => parseServiceSpec({ name: 'a', image: 'x', ...bad }), code('MESHD_BAD_ARGUMENT'), JSON.stringify(bad));
  });

  test('the netns runtime refuses them with MESHD_UNSUPPORTED naming the runtime', () => {
    const s = parseServiceSpec({ name: 'a', image: 'whoami', secrets: [{ source: 'pw' }] });
    assert.throws(() => checkRuntimeSupport(s), (e: unknown) => e instanceof MeshError && e.code === 'MESHD_UNSUPPORTED' && /netns runtime/.test(e.message));
    checkRuntimeSupport(parseServiceSpec({ name: 'a', image: 'busybox', secrets: [{ source: 'pw' }] }));
  });
});

describe('--secret / --config flags', () => {
  test('short and long form', () => {
    assert.deepEqual(parseFileRefFlag('secret', 'pw'), { source: 'pw' });
    assert.deepEqual(parseFileRefFlag('secret', 'source=pw,target=p,uid=1,gid=2,mode=0440'), { source: 'pw', target: 'p', uid: 1, gid: 2, mode: 0o440 });
    assert.deepEqual(parseFileRefFlag('config', 'src=c,dst=/etc/c'), { source: 'c', target: '/etc/c' });
    for (const bad of ['', 'a b', 'target=x', 'source=pw,mode=999', 'source=pw,uid=-1', 'source=pw,colour=red', 'source=pw,bare']) {
      assert.throws(() => parseFileRefFlag('secret', bad), code('MESHD_BAD_ARGUMENT'), bad);
    }
  });
  test('create and update (rm first, then add: rotation)', () => {
    assert.deepEqual(filesFrom({ secret: ['a'], config: ['source=c,target=/c'] }), { secrets: [{ source: 'a' }], configs: [{ source: 'c', target: '/c' }] });
    assert.deepEqual(filesFrom({}), {});
    const cur = { secrets: [{ source: 'old', target: '/run/secrets/pw', uid: 0, gid: 0, mode: 0o400 }, { source: 'keep', target: '/run/secrets/keep', uid: 0, gid: 0, mode: 0o400 }] };
    const next = editFiles(cur, { secretRm: ['old'], secretAdd: ['source=new,target=pw'] });
    assert.deepEqual(next.secrets?.map((r) => r.source), ['keep', 'new']);
    assert.deepEqual(next.configs, []);
  });
});

describe('compose secrets/configs', () => {
  const FILE = [
    'services:',
    '  web:',
    '    image: busybox',
    '    secrets:',
    '      - pw',
    '      - {source: tls, target: tls.pem, uid: "100", gid: "101", mode: 0440}',
    '    configs:',
    '      - source: conf',
    '        target: /etc/web.conf',
    '  other:',
    '    image: busybox',
    'secrets:',
    '  pw: {file: ./pw.txt}',
    '  tls: {external: true, name: shared-tls}',
    '  unused: {file: ./nothing}',
    'configs:',
    '  conf: {file: conf/web.conf}',
    '',
  ].join('\n');

  test('applied: top-level objects named <stack>_<key>, service refs with the key as default target', () => {
    const plan = translateStack('shop', parseCompose(FILE));
    assert.deepEqual(plan.files, [
      { kind: 'secret', key: 'pw', name: 'shop_pw', external: false, file: './pw.txt' },
      { kind: 'secret', key: 'tls', name: 'shared-tls', external: true },
      { kind: 'config', key: 'conf', name: 'shop_conf', external: false, file: 'conf/web.conf' },
    ]);
    const web = plan.services[0]!;
    assert.deepEqual(web.secrets, [
      { source: 'shop_pw', target: '/run/secrets/pw', uid: 0, gid: 0, mode: 0o400 },
      { source: 'shared-tls', target: '/run/secrets/tls.pem', uid: 100, gid: 101, mode: 0o440 },
    ]);
    assert.deepEqual(web.configs, [{ source: 'shop_conf', target: '/etc/web.conf', uid: 0, gid: 0, mode: 0o444 }]);
    assert.equal(plan.services[1]!.secrets, undefined);
  });

  test('refusals name the key path', () => {
    const svc = (extra: string, top = '') => `services:\n  a:\n    image: busybox\n${extra}${top}`;
    for (const [body, field] of [
      [svc('    secrets: [nope]\n'), /services\.a\.secrets\[0\]: secret "nope" is not declared/],
      [svc('    secrets: [s]\n', 'secrets:\n  s: {}\n'), /secrets\.s: needs file/],
      [svc('', 'secrets:\n  s: {external: true, file: ./x}\n'), /secrets\.s: an external secret takes no file/],
      [svc('    secrets:\n      - {source: s, mode: 0999}\n', 'secrets:\n  s: {file: ./s}\n'), /services\.a\.secrets\[0\]\.mode/],
      [svc('    secrets:\n      - {source: s, colour: red}\n', 'secrets:\n  s: {file: ./s}\n'), /services\.a\.secrets\[0\]\.colour/],
      [svc('', 'configs:\n  c: {file: ./c, template_driver: golang}\n'), /configs\.c\.template_driver: not supported by meshd/],
    ] as const) {
      assert.throws(() => parseCompose(body), (e: unknown) => e instanceof MeshError && field.test(e.message), body);
    }
  });
});
