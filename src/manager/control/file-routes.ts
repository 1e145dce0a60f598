/**
 * Routes of secrets and configs (file-objects.ts) on the manager API:
 *
 * - `POST/GET /v1/{secrets,configs}`, `GET/DELETE /v1/{secrets,configs}/:ref` — managers only
 *   (a worker's certificate is refused by the API's access check);
 * - `GET /v1/dispatcher/tasks/:id/files` — a node fetches the payloads of one of ITS tasks (the
 *   node is the one in its certificate; a task of another node, or one not to be running, is
 *   refused), just before starting it. Payloads never travel in assignments (which agents keep
 *   on disk) and never through gossip.
 *
 * Creates and removes are leader writes (fenced); the in-use check and services' reference
 * checks run in the control plane's serialized step.
 */
import { MeshError } from '../../core/errors.js';
import type { FileKind } from '../../core/spec/files.js';
import type { Sealer } from '../../adapters/pki/seal.js';
import type { Store, TxnOp } from '../../adapters/store/store.js';
import { parseBody } from '../model.js';
import type { ControlHost } from './host.js';
import { dispatchable } from './dispatch.js';
import {
  FKEYS, fileCreateSchema, fileView, findFileObject, newRecord, payloadOf, refsOf, servicesUsing, type FileObjectRecord,
} from './file-objects.js';
import { newId } from './state.js';

/** What these routes need of the manager beyond the route table. */
export interface FileRoutesManager {
  readonly store: Store;
  readonly sealer: Sealer;
  leaderTxn(ops: TxnOp[]): Promise<number>;
}

/** One file a node writes for a task: where, owner, mode, payload (base64). */
export interface TaskFile {
  kind: FileKind;
  name: string;
  target: string;
  uid: number;
  gid: number;
  mode: number;
  data: string;
}

export function registerFileRoutes(cp: ControlHost, fm: FileRoutesManager): void {
  const m = cp.o.manager;
  for (const kind of ['secret', 'config'] as const) {
    const base = `/v1/${kind}s`;
    m.route('POST', base, 'manager', async (req) => {
      const b = parseBody(fileCreateSchema, kind, req.body);
      const data = payloadOf(kind, b.data);
      const rec = newRecord(fm.sealer, kind, newId(), b.name, b.labels, data, cp.now());
      try {
        await fm.leaderTxn([{ op: 'put', key: FKEYS.object(kind, b.name), value: rec, ifRevision: 0 }]);
      } catch (e) {
        if (e instanceof MeshError && e.code === 'MESHD_STORE_CONFLICT') {
          throw new MeshError('MESHD_BAD_ARGUMENT', `${kind} ${b.name} already exists`, { field: 'name', reason: 'exists' });
        }
        throw e;
      }
      return { status: 201, json: { id: rec.id, name: rec.name } };
    });
    m.route('GET', base, 'manager', async () => ({
      json: (await fm.store.list<FileObjectRecord>(FKEYS.prefix(kind))).map((kv) => fileView(kind, kv.value)),
    }));
    m.route('GET', `${base}/:ref`, 'manager', async (req) => ({
      json: fileView(kind, (await findFileObject(fm.store, kind, req.params.ref!)).rec, fm.sealer),
    }));
    m.route('DELETE', `${base}/:ref`, 'manager', async (req) => ({
      json: await cp.serialize(async (st) => {
        const { rec, revision } = await findFileObject(fm.store, kind, req.params.ref!);
        const users = servicesUsing(kind, rec.name, [...st.services.values()].map((s) => s.spec));
        if (users.length) {
          throw new MeshError('MESHD_SECRET_IN_USE', `${kind} ${rec.name} is in use by the following service${users.length > 1 ? 's' : ''}: ${users.join(', ')}`, { services: users, kind });
        }
        await fm.leaderTxn([{ op: 'delete', key: FKEYS.object(kind, rec.name), ifRevision: revision }]);
        return { removed: rec.id, name: rec.name };
      }),
    }));
  }

  m.route('GET', '/v1/dispatcher/tasks/:id/files', 'node', async (req, ctx) => ({
    json: await cp.serialize(async (st) => {
      const nodeId = ctx.peer!.nodeId;
      const t = st.tasks.get(req.params.id!);
      // Only the node the task is assigned to, and only while it is to run: never another node's payloads.
      if (!t || t.nodeId !== nodeId || !dispatchable(t, nodeId) || t.desiredState !== 'running') {
        throw new MeshError('MESHD_FORBIDDEN', `task ${req.params.id} is not assigned to this node to run`, { reason: 'not-assigned' });
      }
      const files: TaskFile[] = [];
      for (const kind of ['secret', 'config'] as const) {
        for (const r of refsOf(kind, t.spec)) {
          const kv = await fm.store.get<FileObjectRecord>(FKEYS.object(kind, r.source));
          if (!kv) throw new MeshError('MESHD_NOT_FOUND', `task ${t.id}: no such ${kind}: ${r.source}`, { kind });
          const data = fm.sealer.open(FKEYS.object(kind, r.source), kv.value.data);
          files.push({ kind, name: r.source, target: r.target, uid: r.uid, gid: r.gid, mode: r.mode, data: data.toString('base64') });
        }
      }
      return { files };
    }),
  }));
}
