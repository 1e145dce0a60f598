/** Pure orchestration: reconcile desired vs actual, restart policy, rolling update/rollback. */
export { reconcile, newTask, isLive, nodeLossReason, DEFAULT_HISTORY_LIMIT } from './reconcile.js';
export type { ReconcileInput, ReconcileResult } from './reconcile.js';
export { RollingUpdate } from './update.js';
export type { RollingUpdateInit, UpdateEvent, SpecVersion } from './update.js';
export { restartDecision, conditionAllows, restartsInWindow } from './restart.js';
export type { RestartDecision } from './restart.js';
export type { Action, UpdateState } from './actions.js';
export { eventsForTaskChange, replacementEvents } from './events.js';
