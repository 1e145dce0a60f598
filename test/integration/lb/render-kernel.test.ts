/**
 * The golden renders are accepted by the real nft (1.0.6 here), in order: full, incremental,
 * the inverse incremental, full again over an existing table; and the IPVS companion mark table.
 * Then the read-back of each step equals the desired state.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NftablesDataplane } from '../../../src/adapters/dataplane/nftables.js';
import { realExec } from '../../../src/adapters/exec.js';
import { renderIpvsFull, renderIpvsIncremental } from '../../../src/core/lb/ipvs-render.js';
import { compareKernel, expectedKernel } from '../../../src/core/lb/kernel.js';
import { compile } from '../../../src/core/lb/model.js';
import { applyNftDelta } from '../../../src/core/lb/nft-state.js';
import { planNftFull, planNftIncremental, renderNftFull } from '../../../src/core/lb/nftables-render.js';
import { base, changed, hostMode } from '../../unit/lb/fixtures.js';
import { scratchNetns } from '../../helpers/netns.js';

const NS = 'mtlb-rk';

describe('renders load into the real nftables', () => {
  scratchNetns(NS);
  const nft = (script: string): Promise<string> => realExec.check('nft', ['-f', '-'], { input: script, netns: NS });
  const read = new NftablesDataplane();
  const check = async (d: ReturnType<typeof base>): Promise<void> => {
    assert.deepEqual(compareKernel(expectedKernel(compile(d), 'nftables'), await read.readKernel({ netns: NS })), []);
  };

  test('full → incremental → inverse incremental → full', async () => {
    const a = compile(base());
    const c = compile(changed());
    const full = planNftFull(a);
    await nft(full.script);
    await check(base());
    // the table state (frontend ids, slot chains) carries over from one incremental sync to the next
    const fwd = planNftIncremental(a, c, full.state)!;
    await nft(fwd.script);
    applyNftDelta(full.state, fwd.delta);
    await check(changed());
    const back = planNftIncremental(c, a, full.state)!;
    await nft(back.script);
    applyNftDelta(full.state, back.delta);
    await check(base());
    await nft(renderNftFull(c));
    await check(changed());
    const chains = await realExec.check('nft', ['list', 'table', 'ip', 'meshd-lb'], { netns: NS });
    assert.doesNotMatch(chains, /pick-ing-tcp-1|tcp \. 8081/, 'full sync leaves no stale chain or element behind');
    assert.match(chains, /chain pick-vip-tcp-1 \{/);
  });

  test('host publish mode golden loads and reads back as a local-only, unmasqueraded frontend', async () => {
    await nft(renderNftFull(compile(hostMode())));
    await check(hostMode());
    const k = await read.readKernel({ netns: NS });
    assert.deepEqual(k.frontends.map((f) => [f.key, f.masquerade, f.targets.length]), [['ingress tcp 8080', false, 2]]);
  });

  test('IPVS companion mark table: full then incremental', async () => {
    const f = renderIpvsFull(compile(base()));
    await nft(f.nft);
    await nft(renderIpvsIncremental(compile(base()), compile(changed()), f.marks).nft);
    const out = await realExec.check('nft', ['list', 'map', 'ip', 'meshd-ipvs', 'vip-marks'], { netns: NS });
    assert.match(out, /10\.9\.0\.13 \. tcp \. 5000 : 0x00000106/);
  });
});
