/** The manager's control plane (networks, services, tasks, dispatcher, reconcile loop). */
export { ControlPlane, type ControlPlaneOptions } from './control.js';
export type { Liveness } from './engine.js';
export { INGRESS, type NetworkRecord, type ServiceRecord, type TaskRecord } from './model.js';
export { assignmentsFor } from './dispatch.js';
