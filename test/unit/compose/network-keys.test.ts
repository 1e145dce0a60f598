/** Compose top-level network keys of issue #15: driver macvlan, driver_opts, labels, internal, ipam ip_range/gateway/aux_addresses. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCompose } from '../../../src/core/compose/parse.js';
import { translateStack } from '../../../src/core/compose/translate.js';
import { networkCreateSchema } from '../../../src/manager/control/model.js';
import { checkNetworkCreate, type NetworkCreateBody } from '../../../src/manager/control/network-model.js';
import { isMeshError } from '../../../src/core/errors.js';

const FILE = `
services:
  web:
    image: whoami
    networks: [lan, back]
networks:
  lan:
    driver: macvlan
    driver_opts:
      parent: eth0
    ipam:
      config:
        - subnet: 192.168.0.0/16
          ip_range: 192.168.41.0/24
          gateway: 192.168.41.1
          aux_addresses:
            favorite: 192.168.41.2
  back:
    internal: true
    labels:
      env: prod
      tier: ""
`;

describe('compose network keys', () => {
  test('every key reaches the network request, which the manager accepts', () => {
    const plan = translateStack('shop', parseCompose(FILE));
    const lan = plan.networks.find((n) => n.key === 'lan')!.request!;
    assert.deepEqual(lan, {
      name: 'shop-lan', driver: 'macvlan', attachable: false, subnet: '192.168.0.0/16', gateway: '192.168.41.1', ipRange: '192.168.41.0/24',
      auxAddresses: { favorite: '192.168.41.2' }, options: { parent: 'eth0' },
    });
    const back = plan.networks.find((n) => n.key === 'back')!.request!;
    assert.deepEqual(back, { name: 'shop-back', driver: 'overlay', attachable: false, internal: true, labels: { env: 'prod', tier: '' } });
    for (const r of [lan, back]) checkNetworkCreate(networkCreateSchema.parse(r) as NetworkCreateBody);
  });
  test('refusals name the key', () => {
    const refused = (body: string, field: RegExp) => assert.throws(() => translateStack('s', parseCompose(body)), (e: unknown) => isMeshError(e) && field.test(e.message));
    refused('services:\n  a:\n    image: x\nnetworks:\n  n:\n    driver: bridge\n', /networks\.n\.driver/);
    refused('services:\n  a:\n    image: x\nnetworks:\n  n:\n    driver_opts: {parent: [1]}\n', /networks\.n\.driver_opts\.parent/);
    refused('services:\n  a:\n    image: x\nnetworks:\n  n:\n    external: true\n    internal: true\n', /networks\.n/);
  });
});
