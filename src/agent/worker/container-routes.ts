/**
 * `netctl run` / `netctl container ls|rm|wait` on the agent socket: standalone containers on
 * attachable networks (core/standalone/run.ts). The agent asks the manager for the network
 * attachment (addresses from the cluster's IPAM; refused there for a non-attachable network),
 * runs the container through the worker, and gives the attachment back when the container is
 * removed — also when its start failed, so nothing leaks.
 *
 * Attached `netctl run` (no `-d`): netctl follows `GET /v1/tasks/:id/logs` and waits on
 * `POST /v1/containers/:ref/wait` for the exit code; with `--rm` it then removes the container
 * itself (removing it here at exit could cut the output it is still reading). Detached
 * `--rm` is done here: the container is removed as soon as it exits.
 */
import { randomBytes } from 'node:crypto';
import type { Router } from '../../adapters/api/server.js';
import type { Assignment } from '../../core/assignments.js';
import { MeshError, toMeshError } from '../../core/errors.js';
import {
  containerStatus, defaultRunName, runRequestSchema, standaloneAssignment, type AttachmentGrant,
} from '../../core/standalone/run.js';
import { parseBody } from '../../manager/model.js';
import type { Logger } from '../../adapters/logger.js';
import type { StandaloneContainers } from './containers.js';
import type { TaskView } from './types.js';

/** What these routes use of the worker. */
export interface ContainerHost {
  readonly nodeName: string;
  readonly standalone: StandaloneContainers;
  tasksView(): TaskView[];
  /** Converges after a change of `standalone`; resolves once that converge ran. */
  standaloneChanged(): Promise<void>;
}

/** Runs a standalone container (its attachment already granted); resolves once it started or failed. */
async function runStandalone(w: ContainerHost, a: Assignment): Promise<void> {
  w.standalone.add(a);
  await w.standaloneChanged();
}

/** Stops and removes a standalone container; resolves once its namespace and records are gone. */
async function removeStandalone(w: ContainerHost, id: string): Promise<void> {
  w.standalone.delete(id);
  await w.standaloneChanged();
  const t = w.tasksView().find((x) => x.id === id);
  if (t && t.state !== 'stopped') throw new MeshError('MESHD_EXEC_FAILED', `container ${t.name}: ${t.error ?? `still ${t.state}`}`);
}

/** The manager's dispatcher, as this node (ManagerLink.managerCall). */
export type ManagerCall = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** A container as `container ls` shows it. */
export function containerView(t: TaskView): Record<string, unknown> {
  return {
    id: t.id, name: t.name, runtime: t.runtime, state: t.state, status: containerStatus(t.state, t.exitCode),
    exitCode: t.exitCode ?? null, error: t.state === 'failed' && t.exitCode === null ? t.error : null,
    networks: t.networks, ips: t.ips, container: t.container, netns: t.netns,
  };
}

export function registerContainerRoutes(router: Router, w: ContainerHost, manager: ManagerCall, log: Logger): void {
  const find = (ref: string): TaskView => {
    const t = w.tasksView().find((x) => x.standalone && (x.id === ref || x.name === ref || x.id.startsWith(ref)));
    if (!t) throw new MeshError('MESHD_NOT_FOUND', `No such container: ${ref}`);
    return t;
  };
  const release = async (id: string): Promise<void> => {
    await manager('DELETE', `/v1/dispatcher/attachments/${encodeURIComponent(id)}`).catch((e: unknown) => {
      const err = toMeshError(e);
      if (err.code !== 'MESHD_NOT_FOUND') throw err;
    });
  };
  const remove = async (t: TaskView): Promise<{ removed: string; name: string }> => {
    await removeStandalone(w, t.id);
    await release(t.id);
    return { removed: t.id, name: t.name };
  };

  router.add('POST', '/v1/containers', async (r) => {
    const run = parseBody(runRequestSchema, 'container', r.body);
    const grant = await manager<AttachmentGrant>('POST', '/v1/dispatcher/attachments', { name: run.name ?? defaultRunName(randomBytes(4).toString('hex')), networks: run.networks });
    try {
      await runStandalone(w, standaloneAssignment(grant, run));
    } catch (e) {
      await removeStandalone(w, grant.id).catch(() => undefined);
      await release(grant.id);
      throw e;
    }
    const t = find(grant.id);
    // Never started (image missing, bad argv): docker's `run` fails and leaves nothing behind.
    if (t.state === 'failed' && t.exitCode === null) {
      await remove(t);
      throw new MeshError('MESHD_EXEC_FAILED', `container ${t.name} did not start: ${t.error ?? 'unknown error'}`, { container: t.name });
    }
    if (run.autoRemove) {
      void w.standalone.wait(t.id).then(async () => {
        if (w.standalone.has(t.id)) await remove(t);
      }).catch((e: unknown) => log.error({ err: e, container: t.name }, '--rm: removing the exited container failed'));
    }
    return { status: 201, json: containerView(find(grant.id)) };
  });
  router.add('GET', '/v1/containers', () => ({ json: w.tasksView().filter((t) => t.standalone).map(containerView) }));
  router.add('GET', '/v1/containers/:ref', (r) => ({ json: containerView(find(r.params.ref!)) }));
  router.add('POST', '/v1/containers/:ref/wait', async (r) => {
    const t = find(r.params.ref!);
    return { json: { id: t.id, name: t.name, exitCode: await w.standalone.wait(t.id) } };
  });
  router.add('DELETE', '/v1/containers/:ref', async (r) => {
    const t = find(r.params.ref!);
    const force = r.query.get('force') === '1' || r.query.get('force') === 'true';
    if (!force && (t.state === 'running' || t.state === 'starting')) {
      throw new MeshError('MESHD_BAD_ARGUMENT', `You cannot remove a running container ${t.id}. Stop the container before attempting removal or force remove`, { container: t.name });
    }
    return { json: await remove(t) };
  });
}
