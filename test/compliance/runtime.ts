/**
 * The Runtime contract every implementation keeps — FakeRuntime (unit), NetnsRuntime and
 * DockerRuntime (integration) — as one suite (js-libp2p style, like test/compliance/store.ts):
 * what the worker relies on, independent of how a runtime plumbs networks. Task info and listing,
 * refusals that leave nothing behind, exec results and NOT_FOUND, exit reports through onExit
 * (the task then lists as not running — eventually — until stopped), stop removing the task and being
 * idempotent, and (real runtimes) a new instance finding the tasks an old one started.
 * Plumbing itself (addresses, MTU, routes, 127.0.0.11 before the app) is the overlay's runtime
 * suite: test/integration/overlay/runtime-compliance.ts.
 *
 * The harness hands in attachments (the fake needs none to exist; real runtimes get sandbox
 * namespaces the harness made) and says how to make a task end by itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Attachment, Runtime, TaskSpec } from '../../src/adapters/runtime/types.js';
import { isMeshError } from '../../src/core/errors.js';
import { shortId } from '../../src/core/worker/converge.js';
import { until } from '../helpers/until.js';

export interface RuntimeHarness {
  runtime: Runtime;
  /** Attachment `i` (distinct address per call) on the harness's network(s). */
  attachment(i: number): Attachment;
  /**
   * A task that ends by itself with exit code 3: its spec, and what makes it end (real runtimes:
   * nothing, the program exits; the fake: its test hook).
   */
  exiting(id: string): { spec: TaskSpec; trigger?: () => void };
  /** Resolves once exit reports are being delivered (docker: the events stream is open). */
  exitsReady?: () => Promise<void>;
  /** Real runtimes run `sh -c` in exec: exit code, stdout, stderr and stdin are checked. */
  shell: boolean;
  /** Another instance over the same kernel/engine state (an agent restart); required when the suite's `restarts` option is set. */
  fresh?: () => Promise<Runtime>;
  /** Grace (ms) for stops: long-running contract tasks are `whoami`, which exits on SIGTERM. */
  graceMs: number;
  cleanup?: () => Promise<void>;
}

/** What an implementation has, known before its harness is set up (decides which cases exist). */
export interface RuntimeContractOptions {
  /**
   * The runtime keeps its tasks outside the instance (kernel, engine), so a new instance finds them:
   * the restart case is defined and the harness must give `fresh`. The fake keeps nothing outside
   * the instance, so the case does not exist for it (rather than being skipped).
   */
  restarts: boolean;
}

/** `ids` are short and unique per runtime under test (they name namespaces and containers). */
export function runtimeContract(name: string, setup: () => Promise<RuntimeHarness>, opts: RuntimeContractOptions): void {
  describe(`Runtime contract: ${name}`, { timeout: 120_000 }, () => {
    let h: RuntimeHarness;
    let rt: Runtime;
    const started = new Set<string>();
    const start = async (spec: TaskSpec, atts: readonly Attachment[]) => {
      started.add(spec.id);
      return rt.start(spec, atts);
    };
    const listed = async (id: string) => (await rt.list()).find((t) => t.id === id);

    before(async () => {
      h = await setup();
      rt = h.runtime;
    });
    after(async () => {
      // After the cases: a stop that fails here is a leak to see, not a failure to hide.
      for (const id of started) {
        await rt?.stop(id, 0).catch((e: unknown) => console.error(`# runtime contract ${name}: cleanup stop ${id} failed: ${(e as Error).message}`));
      }
      await rt?.close?.();
      await h?.cleanup?.();
    });

    test('start returns the task running, on its first attachment, in a namespace named after its short id; list() holds it', async () => {
      const info = await start({ id: 'kc1abcdefghijZ', name: 'svc.1', builtin: 'whoami' }, [h.attachment(1)]);
      assert.equal(info.id, 'kc1abcdefghijZ');
      assert.equal(info.name, 'svc.1');
      assert.equal(info.running, true);
      assert.equal(info.ip, h.attachment(1).ip);
      assert.ok(info.netns.endsWith('kc1abcdefghi'), `netns ${info.netns} names the short id`);
      // Listed at once; running eventually: the netns runtime's start() can resolve before its
      // `ip netns exec` child has entered the namespace, so for a few ms `ip netns pids` is empty
      // and list() says not running (seen 2 runs in 7 here) — a list() poll in that window would
      // read a fresh task as exited (reported to the runtime's owner; the worker's start readiness
      // covers tasks with ports).
      assert.ok(await listed('kc1abcdefghijZ'), `listed: ${JSON.stringify(await rt.list())}`);
      const l = await until('kc1 lists as running', async () => {
        const x = await listed('kc1abcdefghijZ');
        return x?.running ? x : undefined;
      }, 2000, 10);
      assert.equal(l?.ip, h.attachment(1).ip);
    });

    test('refused starts (duplicate id, argv and builtin both or neither, no attachment) leave nothing listed', async () => {
      await assert.rejects(start({ id: 'kc1abcdefghijZ', name: 'dup', builtin: 'whoami' }, [h.attachment(2)]), /already exists/);
      await assert.rejects(start({ id: 'kc2', name: 'x' }, [h.attachment(3)]), /exactly one of argv or builtin/);
      await assert.rejects(start({ id: 'kc3', name: 'x', builtin: 'whoami', argv: ['true'] }, [h.attachment(4)]), /exactly one of argv or builtin/);
      await assert.rejects(start({ id: 'kc4', name: 'x', builtin: 'whoami' }, []), /no network attachment/);
      const ids = (await rt.list()).map((t) => t.id);
      for (const id of ['kc2', 'kc3', 'kc4']) assert.ok(!ids.includes(id), `${id} left behind: ${ids}`);
      assert.equal(ids.filter((x) => x === 'kc1abcdefghijZ').length, 1, 'the original is untouched');
    });

    test('exec answers an ExecResult (any exit code is a result); an unknown task → MESHD_NOT_FOUND', async () => {
      if (h.shell) {
        const r = await rt.exec('kc1abcdefghijZ', ['sh', '-c', 'echo hi; echo err >&2; exit 3']);
        assert.deepEqual([r.code, r.stdout, r.stderr], [3, 'hi\n', 'err\n']);
        assert.equal((await rt.exec('kc1abcdefghijZ', ['cat'], { input: 'in\n' })).stdout, 'in\n');
      } else {
        const r = await rt.exec('kc1abcdefghijZ', ['true']);
        assert.equal(typeof r.code, 'number');
        assert.equal(typeof r.stdout, 'string');
        assert.equal(typeof r.stderr, 'string');
      }
      await assert.rejects(rt.exec('kcnope', ['true']), (e: unknown) => isMeshError(e) && e.code === 'MESHD_NOT_FOUND');
    });

    test('a task that ends by itself is reported through onExit with its code, then lists as not running until stopped', async () => {
      assert.ok(rt.onExit, 'the runtime reports exits');
      const exits: Array<[string, number | null]> = [];
      const off = rt.onExit((id, code) => exits.push([id, code]));
      try {
        await h.exitsReady?.();
        const { spec, trigger } = h.exiting('kc5');
        await start(spec, [h.attachment(5)]);
        trigger?.();
        await until('exit of kc5 reported', () => exits.find(([id]) => id === 'kc5'), 10_000, 20);
        assert.deepEqual(exits.filter(([id]) => id === 'kc5'), [['kc5', 3]]);
        // Eventually, not at once: dockerd's container list can trail its `die` event by a moment
        // (seen here: running for one more list() call); the worker acts on the event, not on list().
        await until('kc5 lists as not running after its exit', async () => ((await listed('kc5'))?.running ?? false) === false, 2000, 20);
        await rt.stop('kc5', h.graceMs);
        assert.equal(await listed('kc5'), undefined);
      } finally {
        off();
      }
    });

    // After a restart a runtime may know a task by its short id only (netns: the namespace name
    // holds no more); the worker adopts by short id (core/worker/converge.ts shortId).
    if (opts.restarts) test('a new instance (agent restart) lists the running task, by at least its short id', async () => {
      assert.ok(h.fresh, `${name}: the suite was told this runtime survives restarts, but its harness gives no fresh()`);
      const fresh = await h.fresh();
      try {
        const l = (await fresh.list()).find((x) => shortId(x.id) === shortId('kc1abcdefghijZ'));
        assert.ok(l?.running, `listed by the new instance: ${JSON.stringify(await fresh.list())}`);
        assert.equal(l.ip, h.attachment(1).ip);
      } finally {
        await fresh.close?.();
      }
    });

    test('stop removes the task from list(); stopping again, or an unknown task, is a no-op', async () => {
      await rt.stop('kc1abcdefghijZ', h.graceMs);
      assert.equal(await listed('kc1abcdefghijZ'), undefined);
      await rt.stop('kc1abcdefghijZ', h.graceMs);
      await rt.stop('kcnever', h.graceMs);
      assert.equal((await rt.list()).filter((x) => x.id.startsWith('kc')).length, 0, JSON.stringify(await rt.list()));
    });
  });
}
