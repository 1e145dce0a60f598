/**
 * What the traffic-control features cost on an endpoint change (`npm run bench -- lb-features` →
 * bench/results/lb-features.json; issue 19's proof: "one-endpoint change time with policies and weights on,
 * against off, in the same run").
 *
 * Four namespaces each hold the same N services × 10 endpoints through NftablesDataplane, differing in one
 * feature only:
 *  - off:      the default (random pick, no weights, no policy) — the side every other side is compared with;
 *  - weights:  every service weighted (backends 1–4: the nft renderer repeats each target in proportion,
 *              so each service's pick map is larger);
 *  - sh:       every service `--lb-algorithm source-hash` (jhash of the client address);
 *  - policy:   the default LB plus one task namespace whose `--allow-from` names the changed service, so each
 *              endpoint change also updates that task's allowed set (renderDelta → one more `nft -f`, in the
 *              task's own namespace, as the agent's policy subsystem does).
 * Each change is applied to all four in turn, the order rotating per change and round (rounds.ts roundOrder),
 * so outside load lands on every side alike. Rows: wall time and CPU time (node + nft children) of one change,
 * wall the median and CPU the mean of REPS per round, ratio = off / feature (below 1 = what the feature costs). A feature whose cost sits
 * within the figures' floor is shown `unresolved`, not claimed.
 * Env: BENCH_SIZES=1000  BENCH_REPS=9  BENCH_ROUNDS=3.
 */
import { realExec } from '../src/adapters/exec.js';
import { NftablesDataplane } from '../src/adapters/dataplane/nftables.js';
import type { LbDesired, VipService } from '../src/core/lb/model.js';
import { renderDelta, renderFull } from '../src/core/policy/render.js';
import type { NsPolicy } from '../src/core/policy/desired.js';
import { cpuOf, desired, EPS, freshNs, ip4, median, r1, services, type Svc } from './lib/lb-sync.js';
import { pairedRow, snapshot, writeResults, type BenchRow } from './lib/results.js';
import { roundOrder } from './lib/rounds.js';

const SIZES = (process.env.BENCH_SIZES ?? '1000').split(',').map(Number);
const REPS = Number(process.env.BENCH_REPS ?? 9);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** ± resolution of a wall figure (ms): each change spans one or two process spawns (`nft -f`). */
const WALL_FLOOR_MS = 1;
/** ± resolution of a CPU figure (ms): children's CPU is accounted in 10 ms ticks. */
const CPU_FLOOR_MS = 10;
const START = snapshot();
const SIDES = ['off', 'weights', 'sh', 'policy'] as const;
type SideName = (typeof SIDES)[number];
const NS: Record<SideName, string> = { off: 'lbf-off', weights: 'lbf-w', sh: 'lbf-sh', policy: 'lbf-pol' };
/** The allowing task's namespace of the policy side (its LB sandbox is NS.policy). */
const TASK_NS = 'lbf-task';

/** The desired state of one side: the same services, with the side's feature switched on. */
function shape(side: SideName, svcs: VipService[]): VipService[] {
  if (side === 'weights') return svcs.map((s) => ({ ...s, backends: s.backends.map((b, j) => ({ ...b, weight: (j % 4) + 1 })) }));
  if (side === 'sh') return svcs.map((s) => ({ ...s, lb: { algorithm: 'source-hash' as const } }));
  return svcs;
}

function policyFor(s: Svc, k: number): NsPolicy {
  return { service: 'client', rules: [{ networkId: 'net1', networkName: 'app', daddr: '10.250.0.2', mode: 'allow-from', allowFrom: [`svc-${k}`], allowed: [...s.eps].sort() }] };
}

interface Figures { wall: number[]; cpu: number[] }

function bySide<T>(f: (s: SideName) => T): Record<SideName, T> {
  return { off: f('off'), weights: f('weights'), sh: f('sh'), policy: f('policy') };
}

async function round(n: number, r: number): Promise<Record<SideName, { wall: number; cpu: number }>> {
  for (const side of SIDES) await freshNs(NS[side]);
  await freshNs(TASK_NS);
  const svcs = services(n);
  const base = desired(svcs).services;
  const dps = bySide(() => new NftablesDataplane());
  const cur = bySide((s): LbDesired => ({ services: shape(s, base), ingress: [] }));
  for (const side of SIDES) await dps[side].apply(cur[side], { netns: NS[side] });
  const k0 = Math.floor(n / 2);
  let pol = policyFor(svcs[k0]!, k0);
  await realExec.check('nft', ['-f', '-'], { input: renderFull(pol), netns: TASK_NS });
  for (const side of SIDES) await dps[side].apply(cur[side], { netns: NS[side] }); // noop: primes the compile memo
  const got = bySide((): Figures => ({ wall: [], cpu: [] }));
  for (let rep = 0; rep < REPS; rep++) {
    // the policy's service is the changed one: every change costs the policy side its element update
    const s = svcs[k0]!;
    s.eps[rep % EPS] = ip4(220, r * 64 + rep + 1);
    const changed = desired([s]).services[0]!;
    const fresh: VipService = { ...changed, id: `svc-${k0}`, name: `svc-${k0}`, backends: changed.backends.map((b, j) => ({ ...b, id: `t-${k0}-${j}-${rep}` })) };
    const nextPol = policyFor(s, k0);
    const order = roundOrder(SIDES.length, r * REPS + rep).map((i) => SIDES[i]!);
    for (const side of order) {
      const next = [...cur[side].services];
      next[k0] = shape(side, [fresh])[0]!;
      cur[side] = { services: next, ingress: [] };
      const c = await cpuOf(async () => {
        const res = await dps[side].apply(cur[side], { netns: NS[side] });
        if (res.mode !== 'incremental' || res.changed !== 1) throw new Error(`${side}: expected an incremental change of 1 frontend, got ${res.mode}/${res.changed}`);
        if (side === 'policy') {
          const script = renderDelta(pol, nextPol);
          if (!script.startsWith('delete element') && !script.startsWith('add element')) throw new Error(`policy delta is not an element update: ${script.slice(0, 80)}`);
          await realExec.check('nft', ['-f', '-'], { input: script, netns: TASK_NS });
        }
      });
      got[side].wall.push(c.wall);
      got[side].cpu.push(c.self + c.children);
    }
    pol = nextPol;
  }
  const set = (await realExec.check('nft', ['list', 'set', 'inet', 'meshd-policy', 'allow-net1'], { netns: TASK_NS }));
  for (const ip of pol.rules[0]!.allowed) if (!set.includes(ip)) throw new Error(`policy set lacks ${ip}: ${set}`);
  // CPU: the mean over the round's changes (children's CPU comes in 10 ms ticks: a per-change median would be
  // 0 or 10 ms; summed over REPS changes the tick is REPS times finer per change)
  const out = bySide((s) => ({ wall: r1(median(got[s].wall)), cpu: r1(got[s].cpu.reduce((a, b) => a + b, 0) / got[s].cpu.length) }));
  console.log(`  ${n} svc, round ${r + 1}: one change wall ${SIDES.map((s) => `${s} ${out[s].wall}`).join(', ')} ms; CPU ${SIDES.map((s) => `${s} ${out[s].cpu}`).join(', ')} ms`);
  return out;
}

async function main(): Promise<void> {
  const rows: BenchRow[] = [];
  const extra: Record<string, unknown> = {};
  try {
    for (const n of SIZES) {
      const got: Record<SideName, { wall: number; cpu: number }>[] = [];
      for (let r = 0; r < ROUNDS; r++) got.push(await round(n, r));
      const label = `${n / 1000}k svc × ${EPS} ep`;
      const what: Record<Exclude<SideName, 'off'>, string> = { weights: 'weights 1–4 on every service', sh: 'source-hash on every service', policy: 'plus one allowing task\'s policy set update' };
      for (const side of ['weights', 'sh', 'policy'] as const) {
        rows.push(
          pairedRow(`one-endpoint change, ${label}, ${what[side]} (median of ${REPS} per round)`, 'ms', got.map((g) => g[side].wall), got.map((g) => g.off.wall), 'the same change with the feature off', 'lower', { floor: WALL_FLOOR_MS, samplesPerRound: REPS }),
          pairedRow(`one-endpoint change, ${label}, ${what[side]}: CPU time (node + nft; mean of ${REPS} per round)`, 'ms', got.map((g) => g[side].cpu), got.map((g) => g.off.cpu), 'the same change with the feature off', 'lower', { floor: CPU_FLOOR_MS / REPS, samplesPerRound: REPS, note: `children CPU comes in 10 ms ticks: ± ${r1(CPU_FLOOR_MS / REPS)} ms per change over ${REPS} changes` }),
        );
      }
      extra[`rounds_${n}`] = got;
    }
  } finally {
    for (const ns of [...Object.values(NS), TASK_NS]) await realExec.run('ip', ['netns', 'del', ns]);
  }
  writeResults('lb-features', rows, { ...extra, reps: REPS, roundsPerSize: ROUNDS }, { start: START }); // sets exitCode 1 when rejected
}

void main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 2;
});
