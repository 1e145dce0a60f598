/**
 * Compose parser and stack translator: table tests for what swarm users write, and one
 * row per error family (unknown key, wrong type, bad port, bad duration, undeclared
 * network, YAML syntax, names), each asserting the key path in the message.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../../../src/core/errors.js';
import {
  editDistance, interpolateString, parseCompose, parseComposeDuration, planDeploy, sameServiceSpec, shellSplit, stackOf, STACK_ENV,
  translateStack, validateStackName,
} from '../../../src/core/compose/index.js';

const FULL = `
version: "3.8"
x-common: &common
  environment:
    MODE: prod
services:
  web:
    image: whoami
    <<: *common
    ports:
      - "8080:80"
      - "5353:53/udp"
      - target: 9000
        published: 9001
        protocol: tcp
        mode: host
    networks: [front, back]
    deploy:
      replicas: 2
      endpoint_mode: vip
      placement:
        constraints: ["node.labels.zone==a"]
        preferences:
          - spread: node.labels.rack
      update_config:
        parallelism: 2
        delay: 10s
        failure_action: rollback
        monitor: 1m30s
        max_failure_ratio: 0.25
        order: start-first
      restart_policy:
        condition: on-failure
        delay: 500ms
        max_attempts: 3
        window: 2m
  client:
    image: busybox
    command: sh -c 'while true; do curl -s http://web/; sleep 1; done'
    environment:
      - A=1
      - B=x=y
    deploy:
      mode: global
networks:
  front:
    driver: overlay
    attachable: true
    ipam:
      config:
        - subnet: 10.20.0.0/24
  back:
`;

function badArg(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof MeshError, String(e));
    assert.equal(e.code, 'MESHD_BAD_ARGUMENT');
    assert.match(e.message, re);
    assert.equal(e.message.includes('\n'), false, 'one line');
    return true;
  });
}

describe('parseCompose + translateStack: the supported subset', () => {
  const plan = translateStack('shop', parseCompose(FULL));

  test('services are named <stack>-<svc>, in file order', () => {
    assert.deepEqual(plan.services.map((s) => s.name), ['shop-web', 'shop-client']);
  });

  test('web: ports (short, udp, long), networks, replicas, placement, update and restart config', () => {
    const web = plan.services[0]!;
    assert.equal(web.image, 'whoami');
    assert.deepEqual(web.mode, { replicated: { replicas: 2 } });
    assert.deepEqual(web.ports, [
      { published: 8080, target: 80, proto: 'tcp', mode: 'ingress', policy: 'cluster' },
      { published: 5353, target: 53, proto: 'udp', mode: 'ingress', policy: 'cluster' },
      { published: 9001, target: 9000, proto: 'tcp', mode: 'host', policy: 'cluster' },
    ]);
    assert.deepEqual(web.networks, ['shop-front', 'shop-back']);
    assert.deepEqual(web.constraints, ['node.labels.zone==a']);
    assert.deepEqual(web.preferences, [{ spread: 'node.labels.rack' }]);
    assert.deepEqual(web.updateConfig, { parallelism: 2, delayMs: 10_000, failureAction: 'rollback', monitorMs: 90_000, maxFailureRatio: 0.25, order: 'start-first' });
    assert.deepEqual(web.restartPolicy, { condition: 'on-failure', delayMs: 500, maxAttempts: 3, windowMs: 120_000 });
    assert.deepEqual(web.env, { MODE: 'prod', [STACK_ENV]: 'shop' }, 'merge key from an x- anchor');
    assert.equal(web.endpointMode, 'vip');
  });

  test('client: shell-split command, list environment, global mode, default network', () => {
    const c = plan.services[1]!;
    assert.deepEqual(c.command, ['sh', '-c', 'while true; do curl -s http://web/; sleep 1; done']);
    assert.deepEqual(c.env, { A: '1', B: 'x=y', [STACK_ENV]: 'shop' });
    assert.deepEqual(c.mode, { global: {} });
    assert.deepEqual(c.networks, ['shop-default']);
  });

  test('defaults are the manager\'s (Docker\'s)', () => {
    const c = plan.services[1]!;
    assert.deepEqual(c.updateConfig, { parallelism: 1, delayMs: 0, failureAction: 'pause', monitorMs: 5000, maxFailureRatio: 0, order: 'stop-first' });
    assert.deepEqual(c.restartPolicy, { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 });
  });

  test('networks: only used ones, prefixed, with subnet and attachable', () => {
    assert.deepEqual(plan.networks.map((n) => [n.name, n.external, n.request]), [
      ['shop-front', false, { name: 'shop-front', driver: 'overlay', attachable: true, subnet: '10.20.0.0/24' }],
      ['shop-back', false, { name: 'shop-back', driver: 'overlay', attachable: false }],
      ['shop-default', false, { name: 'shop-default', driver: 'overlay', attachable: false }],
    ]);
  });

  test('ownership: stackOf reads the marker and checks the name prefix', () => {
    assert.equal(stackOf(plan.services[0]!), 'shop');
    assert.equal(stackOf({ name: 'web', env: { [STACK_ENV]: 'shop' } }), undefined);
    assert.equal(stackOf({ name: 'shop-web', env: {} }), undefined);
  });

  test('valid Compose keys meshd does not implement are refused naming the key (never accepted and dropped)', () => {
    const refused = (body: string, field: string) => assert.throws(() => parseCompose(body), (e: unknown) => {
      assert.ok(e instanceof MeshError);
      assert.equal(e.code, 'MESHD_UNSUPPORTED');
      assert.equal(e.details?.field, field);
      assert.match(e.message, new RegExp(`^${field.replace(/[.[\]]/g, '\\$&')}: not supported by meshd`));
      return true;
    });
    const svc = (extra: string) => `services:\n  a:\n    image: whoami\n${extra}`;
    for (const [body, field] of [
      [svc('    build: .\n'), 'services.a.build'],
      [svc('    depends_on: [b]\n'), 'services.a.depends_on'],
      [svc('    cap_add: [NET_ADMIN]\n'), 'services.a.cap_add'],
      [svc('    restart: always\n'), 'services.a.restart'],
      [svc('') + 'secrets:\n  s: {file: ./s, driver: x}\n', 'secrets.s.driver'],
      [svc('') + 'configs:\n  c: {file: ./c, template_driver: golang}\n', 'configs.c.template_driver'],
      [svc('') + 'name: proj\n', 'name'],
      [svc('') + 'volumes:\n  v:\n    driver_opts: {}\n', 'volumes.v.driver_opts'],
      [svc('    volumes:\n      - type: bind\n        source: /x\n        target: /y\n        bind: {propagation: shared}\n'), 'services.a.volumes[0].bind'],
      [svc('    ports:\n      - target: 80\n        host_ip: 127.0.0.1\n'), 'services.a.ports[0].host_ip'],
    ] as const) refused(body, field);
    // x-* extension keys still pass (Compose spec), and nothing is left as a warning.
    assert.deepEqual(parseCompose(svc('') + 'x-anything: 1\n').warnings, []);
  });

  test('network map form, external networks and name overrides', () => {
    const p = translateStack('s', parseCompose('services:\n  a:\n    image: whoami\n    networks:\n      ext:\n      mine: {aliases: [x]}\nnetworks:\n  ext:\n    external: true\n    name: shared\n  mine:\n    name: custom-net\n'));
    assert.deepEqual(p.networks.map((n) => [n.key, n.name, n.external]), [['ext', 'shared', true], ['mine', 'custom-net', false]]);
    assert.deepEqual(p.services[0]!.networks, ['shared', 'custom-net']);
    assert.deepEqual(p.warnings, []);
    assert.deepEqual(p.services[0]!.networkAliases, { 'custom-net': ['a', 'x'], shared: ['a'] });
  });

  test('network aliases: the short name on every network (docker stack deploy), plus the file\'s own', () => {
    const web = plan.services[0]!;
    assert.deepEqual(web.networkAliases, { 'shop-back': ['web'], 'shop-front': ['web'] });
    assert.deepEqual(plan.services[1]!.networkAliases, { 'shop-default': ['client'] });
    const p = translateStack('s', parseCompose('services:\n  api:\n    image: whoami\n    networks:\n      n: {aliases: [api, backend, v1]}\nnetworks:\n  n: {}\n'));
    assert.deepEqual(p.services[0]!.networkAliases, { 's-n': ['api', 'backend', 'v1'] }, 'duplicate of the short name dropped');
    assert.throws(() => parseCompose('services:\n  api:\n    image: whoami\n    networks:\n      n: {ipv4_address: 10.0.0.9}\nnetworks:\n  n: {}\n'),
      /services\.api\.networks\.n\.ipv4_address: not supported by meshd/);
  });
});

describe('error families name the key path', () => {
  const svc = (body: string) => `services:\n  web:\n    image: whoami\n${body}`;
  const rows: Array<[string, string, RegExp]> = [
    ['unknown key (with hint)', svc('    deploy:\n      replicaz: 2\n'), /^services\.web\.deploy\.replicaz: unknown key \(did you mean replicas\?\)$/],
    ['unknown key (no hint)', svc('    frobnicate: 1\n'), /^services\.web\.frobnicate: unknown key$/],
    ['unknown top-level key', 'servics:\n  a:\n    image: x\n', /^servics: unknown key \(did you mean services\?\)$/],
    ['wrong type: replicas', svc('    deploy:\n      replicas: three\n'), /^services\.web\.deploy\.replicas: expected a whole number, got "three"$/],
    ['wrong type: replicas fractional', svc('    deploy:\n      replicas: 1.5\n'), /^services\.web\.deploy\.replicas: expected a whole number, got 1\.5$/],
    ['out of range: replicas', svc('    deploy:\n      replicas: 20000\n'), /^services\.web\.deploy\.replicas: must be between 0 and 10000/],
    ['wrong type: ports not a list', svc('    ports: "8080:80"\n'), /^services\.web\.ports: expected a list, got "8080:80"$/],
    ['wrong type: image', svc('    deploy: 3\n'), /^services\.web\.deploy: expected a mapping, got 3$/],
    ['wrong enum: mode', svc('    deploy:\n      mode: sometimes\n'), /^services\.web\.deploy\.mode: expected one of replicated, global, got "sometimes"$/],
    ['bad port: letters', svc('    ports: ["80:abc"]\n'), /^services\.web\.ports\[0\]: "80:abc" is not a port mapping/],
    ['bad port: range', svc('    ports: ["80", "8080-8081:80-81"]\n'), /^services\.web\.ports\[1\]: "8080-8081:80-81" is not a port mapping/],
    ['bad port: host ip', svc('    ports: ["127.0.0.1:8080:80"]\n'), /^services\.web\.ports\[0\]: "127\.0\.0\.1:8080:80" is not a port mapping/],
    ['bad port: too big', svc('    ports: ["70000:80"]\n'), /^services\.web\.ports\[0\]: "70000:80" is not a port mapping \(ports are 1\.\.65535/],
    ['bad port: protocol', svc('    ports: ["80:80/sctp"]\n'), /^services\.web\.ports\[0\]: "80:80\/sctp" is not a port mapping \(protocol/],
    ['bad port: long form target', svc('    ports:\n      - published: 80\n'), /^services\.web\.ports\[0\]\.target: required$/],
    ['bad port: long form type', svc('    ports:\n      - {target: http}\n'), /^services\.web\.ports\[0\]\.target: expected a whole number, got "http"$/],
    ['bad port: long form key', svc('    ports:\n      - {target: 80, publised: 8080}\n'), /^services\.web\.ports\[0\]\.publised: unknown key \(did you mean published\?\)$/],
    ['duplicate published port', svc('    ports: ["80:80", "80:81"]\n'), /^services\.web: ports\.1\.published: port 80\/tcp published twice$/],
    ['bad duration', svc('    deploy:\n      update_config:\n        delay: 10 seconds\n'), /^services\.web\.deploy\.update_config\.delay: expected a duration like "10s" or "1m30s", got "10 seconds"$/],
    ['bare number duration', svc('    deploy:\n      restart_policy:\n        window: 10\n'), /^services\.web\.deploy\.restart_policy\.window: expected a duration/],
    ['ratio out of range', svc('    deploy:\n      update_config:\n        max_failure_ratio: 2\n'), /^services\.web\.deploy\.update_config\.max_failure_ratio: must be between 0 and 1, got 2$/],
    ['replicas with global', svc('    deploy:\n      mode: global\n      replicas: 2\n'), /^services\.web\.deploy\.replicas: cannot be used with mode global$/],
    ['bad constraint', svc('    deploy:\n      placement:\n        constraints: ["zone is a"]\n'), /^services\.web\.deploy\.placement\.constraints\[0\]: /],
    ['undeclared network', svc('    networks: [nope]\n'), /^services\.web\.networks\[0\]: network "nope" is not declared in the top-level networks$/],
    ['alias not a DNS label', svc('    networks:\n      n: {aliases: [Bad_Name]}\nnetworks:\n  n: {}\n'), /^services\.web\.networks\.n\.aliases\[0\]: alias "Bad_Name" is not a DNS label/],
    ['aliases not a list', svc('    networks:\n      n: {aliases: x}\nnetworks:\n  n: {}\n'), /^services\.web\.networks\.n\.aliases: expected a list, got "x"$/],
    ['unknown key in a service network', svc('    networks:\n      n: {alias: [x]}\nnetworks:\n  n: {}\n'), /^services\.web\.networks\.n\.alias: unknown key \(did you mean aliases\?\)$/],
    ['network driver', svc('networks:\n  n:\n    driver: bridge\n'), /^networks\.n\.driver: only "overlay" and "macvlan" are supported, got "bridge"$/],
    ['bad subnet', svc('networks:\n  n:\n    ipam:\n      config:\n        - subnet: 10.0.0.0/33\n'), /^networks\.n\.ipam\.config\[0\]\.subnet: "10\.0\.0\.0\/33" is not an IPv4 CIDR/],
    ['env without value (list)', svc('    environment: [FOO]\n'), /^services\.web\.environment\[0\]: "FOO" has no value/],
    ['env without value (map)', svc('    environment:\n      FOO:\n'), /^services\.web\.environment\.FOO: has no value/],
    ['env bad name', svc('    environment: ["1X=2"]\n'), /^services\.web\.environment\[0\]: "1X" is not a valid variable name$/],
    ['missing image', 'services:\n  web:\n    command: [x]\n', /^services\.web\.image: required/],
    ['no services', 'version: "3"\nservices: {}\n', /^services: at least one service is needed$/],
    ['services missing', 'version: "3"\n', /^services: expected a mapping, got nothing/],
    ['empty file', '', /^\(root\): expected a mapping/],
    ['unterminated quote in command', svc('    command: echo "hi\n'), /^services\.web\.command: unterminated double quote$/],
    ['service name not a DNS label', 'services:\n  Web_1:\n    image: whoami\n', /^services\.Web_1: service name "s-Web_1" is not a DNS label/],
    ['yaml syntax error', 'services:\n  web:\n    image: [whoami\n', /^compose file line \d+, column \d+: /],
    ['duplicate key', 'services:\n  web:\n    image: a\n    image: b\n', /^compose file line 4, column 5: Map keys must be unique/],
  ];
  for (const [name, text, re] of rows) {
    test(name, () => badArg(() => translateStack('s', parseCompose(text)), re));
  }
});

describe('helpers', () => {
  test('durations', () => {
    const rows: Array<[unknown, number]> = [['10s', 10_000], ['1m30s', 90_000], ['1.5h', 5_400_000], ['500ms', 500], ['0', 0], [0, 0], ['2m3s4ms', 123_004], ['1500us', 2]];
    for (const [v, ms] of rows) assert.equal(parseComposeDuration(v, 'x'), ms, String(v));
    for (const v of ['', '10', 10, '1d', 's', '-1s', '1s ', '1 s']) {
      if (v === '1s ') continue; // trimmed: valid
      badArg(() => parseComposeDuration(v, 'a.b'), /^a\.b: /);
    }
  });

  test('shellSplit', () => {
    const rows: Array<[string, string[]]> = [
      ['a b  c', ['a', 'b', 'c']],
      [`sh -c 'echo "$X"; ls'`, ['sh', '-c', 'echo "$X"; ls']],
      [`echo "a \\"b\\" c" d\\ e`, ['echo', 'a "b" c', 'd e']],
      [`''`, ['']],
      ['  ', []],
    ];
    for (const [s, want] of rows) assert.deepEqual(shellSplit(s, 'c'), want, s);
    badArg(() => shellSplit(`'x`, 'c'), /^c: unterminated single quote$/);
  });

  test('editDistance', () => {
    assert.equal(editDistance('replicaz', 'replicas'), 1);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('kitten', 'sitting'), 3);
  });

  test('stack names', () => {
    assert.equal(validateStackName('shop1'), 'shop1');
    for (const bad of ['', 'a-b', 'A', 'a_b', 'x'.repeat(31)]) badArg(() => validateStackName(bad), /invalid stack name/);
  });
});

describe('planDeploy', () => {
  const plan = translateStack('shop', parseCompose('services:\n  web:\n    image: whoami\n  db:\n    image: whoami\n'));
  const [web, db] = plan.services as [typeof plan.services[0], typeof plan.services[0]];

  test('fresh cluster: networks then services', () => {
    assert.deepEqual(planDeploy(plan, [], ['ingress']).map((s) => [s.kind, s.name]), [
      ['create-network', 'shop-default'], ['create-service', 'shop-web'], ['create-service', 'shop-db'],
    ]);
  });

  test('redeploy: equal specs unchanged (key order ignored), changed ones updated, --prune removes leftovers', () => {
    const reordered = Object.fromEntries(Object.entries(web).reverse()) as typeof web;
    assert.ok(sameServiceSpec(web, reordered));
    const existing = [
      { id: 'w', version: 3, spec: reordered },
      { id: 'd', version: 1, spec: { ...db, mode: { replicated: { replicas: 5 } } } },
      { id: 'o', version: 1, spec: { ...db, name: 'shop-old' } },
    ];
    assert.deepEqual(planDeploy(plan, existing, ['shop-default']).map((s) => [s.kind, s.name]), [['unchanged-service', 'shop-web'], ['update-service', 'shop-db']]);
    const steps = planDeploy(plan, existing, ['shop-default'], true);
    assert.deepEqual(steps.map((s) => [s.kind, s.name]), [['unchanged-service', 'shop-web'], ['update-service', 'shop-db'], ['remove-service', 'shop-old']]);
    assert.deepEqual(steps[1], { kind: 'update-service', name: 'shop-db', id: 'd', version: 1, spec: db });
  });

  test('a same-named service outside the stack is not taken over; a missing external network is an error', () => {
    badArg(() => planDeploy(plan, [{ id: 'x', version: 1, spec: { ...web, env: {} } }], []), /^service shop-web already exists and is not part of stack shop$/);
    const ext = translateStack('s', parseCompose('services:\n  a:\n    image: whoami\n    networks: [e]\nnetworks:\n  e:\n    external: true\n'));
    badArg(() => planDeploy(ext, [], []), /^networks\.e: external network e does not exist$/);
    assert.deepEqual(planDeploy(ext, [], ['e']).map((s) => s.kind), ['create-service']);
  });
});

describe('interpolation', () => {
  const env: Record<string, string> = { TAG: 'v2', EMPTY: '', PORT: '8080' };
  const lookup = (k: string) => env[k];

  test('table', () => {
    const rows: Array<[string, string]> = [
      ['plain', 'plain'],
      ['$$HOME and $$', '$HOME and $'],
      ['img:$TAG', 'img:v2'],
      ['img:${TAG}-x', 'img:v2-x'],
      ['${EMPTY:-d}|${EMPTY-d}|${NOPE-d}|${NOPE:-d}', 'd||d|d'],
      ['${TAG:+yes}|${EMPTY:+yes}|${EMPTY+yes}|${NOPE+yes}', 'yes||yes|'],
      ['${TAG:?need}', 'v2'],
      ['cost $5', 'cost $5'],
    ];
    for (const [s, want] of rows) assert.equal(interpolateString(s, 'p', lookup, []), want, s);
  });

  test('unset without default: "" and a warning naming the key', () => {
    const w: string[] = [];
    assert.equal(interpolateString('a${NOPE}b', 'services.web.image', lookup, w), 'ab');
    assert.deepEqual(w, ['services.web.image: variable NOPE is not set, using ""']);
  });

  test('errors name the key', () => {
    badArg(() => interpolateString('${NOPE:?set it}', 'services.web.image', lookup, []), /^services\.web\.image: required variable NOPE is not set: set it$/);
    badArg(() => interpolateString('${EMPTY:?}', 'x', lookup, []), /^x: required variable EMPTY is empty$/);
    badArg(() => interpolateString('${1bad}', 'services.web.command[2]', lookup, []), /^services\.web\.command\[2\]: invalid interpolation "\$\{1bad\}"/);
  });

  test('applied to values (not keys) of the whole file before checks', () => {
    const f = parseCompose('services:\n  web:\n    image: whoami:${TAG}\n    command: ["sh", "-c", "echo $$HOME"]\n    ports: ["${PORT}:80"]\n    deploy:\n      replicas: ${N:-2}\n', { env: lookup });
    const s = f.services[0]!;
    assert.equal(s.image, 'whoami:v2');
    assert.deepEqual(s.command, ['sh', '-c', 'echo $HOME']);
    assert.deepEqual(s.ports, [{ published: 8080, target: 80, proto: 'tcp', mode: 'ingress' }]);
    assert.equal(s.replicas, 2, '"2" from a default is a whole number');
    badArg(() => parseCompose('services:\n  web:\n    image: x\n    ports: ["${NOPE}:80"]\n'), /^services\.web\.ports\[0\]: ":80" is not a port mapping/);
  });
});
