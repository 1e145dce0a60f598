/**
 * Choosing the DNS server's UDP path (native-udp.ts): the native addon when it loads, else dgram with the
 * reason; `native` without the addon is a config error; the addon is found from tsc's and the bundle's
 * directories alike. The socket paths themselves run in test/integration/dns/* (both paths).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADDON_RELATIVE, chooseUdpPath, findAddon, loadNativeUdp, type NativeUdpAddon } from '../../../src/adapters/dns-server/native-udp.js';
import { DnsServer } from '../../../src/adapters/dns-server/server.js';
import { DnsRegistry } from '../../../src/core/dns/registry.js';
import { meshCode } from '../../helpers/errors.js';

const fakeAddon = {} as NativeUdpAddon;

describe('dns udp path choice', () => {
  test('js is taken as asked, without loading anything', () => {
    const p = chooseUdpPath('js', () => assert.fail('must not load'));
    assert.deepEqual({ path: p.path, reason: p.reason, addon: p.addon }, { path: 'js', reason: 'configured', addon: undefined });
  });

  test('auto: native when the addon loads, else js with the reason', () => {
    const ok = chooseUdpPath('auto', () => ({ addon: fakeAddon, file: '/x/meshd_udp.node' }));
    assert.equal(ok.path, 'native');
    assert.equal(ok.addon, fakeAddon);
    assert.match(ok.reason, /\/x\/meshd_udp\.node/);
    const no = chooseUdpPath('auto', () => ({ addon: undefined, reason: 'addon not built' }));
    assert.deepEqual({ path: no.path, reason: no.reason }, { path: 'js', reason: 'addon not built' });
  });

  test('native without a loadable addon, or an unknown choice, is MESHD_BAD_CONFIG', () => {
    assert.throws(() => chooseUdpPath('native', () => ({ addon: undefined, reason: 'addon not built' })), meshCode('MESHD_BAD_CONFIG'));
    assert.throws(() => chooseUdpPath('fast' as never), meshCode('MESHD_BAD_CONFIG'));
    assert.throws(() => new DnsServer({ registry: new DnsRegistry(), listen: [], udp: 'turbo' as never }), meshCode('MESHD_BAD_CONFIG'));
  });

  test('load failures say why: not Linux, not built, not an addon', () => {
    const mac = loadNativeUdp('darwin', '/x');
    assert.ok(!mac.addon && /Linux/.test(mac.reason));
    const none = loadNativeUdp('linux', null);
    assert.ok(!none.addon && /not built/.test(none.reason));
    const dir = mkdtempSync(join(tmpdir(), 'h18d-native-'));
    try {
      const bad = join(dir, 'bad.node');
      writeFileSync(bad, 'not an ELF file');
      const r = loadNativeUdp('linux', bad);
      assert.ok(!r.addon && r.reason.includes('failed to load'), JSON.stringify(r));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('findAddon: MESHD_NATIVE_UDP first, else the nearest ancestor holding native/build/Release', () => {
    assert.equal(findAddon('/nowhere', { MESHD_NATIVE_UDP: '/opt/a.node' }), '/opt/a.node');
    const dir = mkdtempSync(join(tmpdir(), 'h18d-native-'));
    try {
      mkdirSync(join(dir, 'native', 'build', 'Release'), { recursive: true });
      writeFileSync(join(dir, ADDON_RELATIVE), '');
      const deep = join(dir, 'dist', 'src', 'adapters', 'dns-server');
      mkdirSync(deep, { recursive: true });
      assert.equal(findAddon(deep, {}), join(dir, ADDON_RELATIVE));
      assert.equal(findAddon(join(dir, 'dist', 'src', 'bin'), {}), join(dir, ADDON_RELATIVE));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
