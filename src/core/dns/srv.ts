/**
 * Name shapes of the SRV records and stable slot names (issue 19 item 4; libnetwork#1362, moby#27080).
 *
 *   `_<port>._<proto>.<svc>`      SRV: one record per healthy task of `svc` listening on `<port>/<proto>`
 *   `_http._<proto>.<svc>`        the same for port 80 (`_https`: 443) — the service-name form clients such
 *                                 as Go's `net.LookupSRV("http", "tcp", "web")` ask for
 *   `<slot>.<svc>`                A: the healthy task(s) in that slot of a replicated service
 *
 * Pure string work; the resolver decides what exists. Also where the slot comes from: the manager names a
 * replicated task `<svc>.<slot>.<task id>` and a global one `<svc>.<node id>.<task id>` (node ids are 24 hex
 * characters), and the endpoint record carries the task name, the service name and the task id — so the
 * slot is read back from the name rather than added to the record: no wire change, and agents of the
 * previous version (whose strict record schema would drop a record with an unknown key) keep working.
 */
import { MAX_SLOT } from './registry.js';

/** Well-known service labels (RFC 6335 service names) answered as aliases of their port. */
export const SRV_SERVICE_PORTS: Readonly<Record<string, number>> = Object.freeze({ http: 80, https: 443 });

export interface SrvQuestion {
  readonly port: number;
  readonly proto: 'tcp' | 'udp';
  /** The rest of the name (service, alias, possibly `.<network>`-suffixed). */
  readonly rest: string;
}

const PORT_RE = /^[1-9]\d{0,4}$/;
const SLOT_RE = /^(0|[1-9]\d{0,6})$/;

/** `_80._tcp.web` → {80, tcp, web}; undefined when the name is not of the SRV shape we serve. */
export function parseSrvName(lowerName: string): SrvQuestion | undefined {
  if (lowerName.charCodeAt(0) !== 0x5f) return undefined; // '_'
  const a = lowerName.indexOf('.');
  if (a < 0) return undefined;
  const b = lowerName.indexOf('.', a + 1);
  if (b < 0 || b === lowerName.length - 1) return undefined;
  const svcLabel = lowerName.slice(1, a);
  const protoLabel = lowerName.slice(a + 1, b);
  if (protoLabel !== '_tcp' && protoLabel !== '_udp') return undefined;
  let port: number | undefined;
  if (PORT_RE.test(svcLabel)) port = Number(svcLabel);
  else if (Object.hasOwn(SRV_SERVICE_PORTS, svcLabel)) port = SRV_SERVICE_PORTS[svcLabel];
  if (port === undefined || port > 65535) return undefined;
  return { port, proto: protoLabel === '_tcp' ? 'tcp' : 'udp', rest: lowerName.slice(b + 1) };
}

/** `1.web` → {1, web}; undefined when the first label is not a canonical decimal slot. */
export function parseSlotName(lowerName: string): { slot: number; rest: string } | undefined {
  const a = lowerName.indexOf('.');
  if (a <= 0 || a === lowerName.length - 1) return undefined;
  const label = lowerName.slice(0, a);
  if (!SLOT_RE.test(label)) return undefined;
  const slot = Number(label);
  return slot <= MAX_SLOT ? { slot, rest: lowerName.slice(a + 1) } : undefined;
}

/**
 * Slot of a task from its manager-given name `<service>.<slot>.<taskId>`; undefined for any other shape
 * (a global task's `<service>.<node id>.<taskId>`: a node id is 24 hex characters, never a decimal of at
 * most 7 digits without a leading zero).
 */
export function slotFromTaskName(taskName: string, service: string, taskId: string): number | undefined {
  const head = `${service}.`;
  const tail = `.${taskId}`;
  if (taskName.length <= head.length + tail.length || !taskName.startsWith(head) || !taskName.endsWith(tail)) return undefined;
  const mid = taskName.slice(head.length, taskName.length - tail.length);
  if (!SLOT_RE.test(mid)) return undefined;
  const slot = Number(mid);
  return slot <= MAX_SLOT ? slot : undefined;
}
