/** Compose `x-meshd-allow` under a service and `x-meshd-default-deny` under a network (issue #19). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCompose } from '../../../src/core/compose/parse.js';
import { translateStack } from '../../../src/core/compose/translate.js';
import { isMeshError } from '../../../src/core/errors.js';
import { networkCreateSchema } from '../../../src/manager/control/model.js';
import { checkNetworkCreate } from '../../../src/manager/control/network-model.js';

const FILE = `
services:
  web:
    image: whoami
    networks: [back]
    x-meshd-allow: [client, monitoring]
  client:
    image: whoami
    networks: [back]
networks:
  back:
    x-meshd-default-deny: true
`;

describe('compose policy keys', () => {
  test('x-meshd-allow: the file keys become stack names, others stay cluster names; default-deny reaches the network request', () => {
    const plan = translateStack('shop', parseCompose(FILE));
    const web = plan.services.find((s) => s.name === 'shop-web')!;
    assert.deepEqual(web.allowFrom, ['shop-client', 'monitoring']);
    assert.equal('allowFrom' in plan.services.find((s) => s.name === 'shop-client')!, false);
    const req = plan.networks.find((n) => n.key === 'back')!.request!;
    assert.equal(req.defaultDeny, true);
    // The manager keeps it on the record.
    assert.equal(checkNetworkCreate(networkCreateSchema.parse(req)).extra.defaultDeny, true);
  });
  test('an empty list is kept (nobody)', () => {
    const plan = translateStack('shop', parseCompose(FILE.replace('[client, monitoring]', '[]')));
    assert.deepEqual(plan.services[0]!.allowFrom, []);
  });
  test('bad values and unknown meshd keys are refused naming the path', () => {
    assert.throws(() => parseCompose(FILE.replace('[client, monitoring]', 'client')), (e) => isMeshError(e) && /services\.web\.x-meshd-allow/.test(e.message));
    assert.throws(() => parseCompose(FILE.replace('x-meshd-default-deny: true', 'x-meshd-default-deny: maybe')), (e) => isMeshError(e) && /networks\.back\.x-meshd-default-deny/.test(e.message));
    assert.throws(() => parseCompose(FILE.replace('x-meshd-default-deny', 'x-meshd-default-dney')), (e) => isMeshError(e) && /networks\.back\.x-meshd-default-dney: unknown meshd key/.test(e.message));
    assert.throws(() => translateStack('shop', parseCompose(FILE.replace('monitoring', 'Bad_Name'))), (e) => isMeshError(e) && /services\.web/.test(e.message));
  });
});
