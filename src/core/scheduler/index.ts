/** Pure task placement: constraints, filters, spread/binpack/random, placement preferences. */
export { schedule, preferenceValue } from './scheduler.js';
export type { Assignment, ScheduleOptions, ScheduleResult, Unschedulable } from './scheduler.js';
export { parseConstraint, matchConstraint, compileConstraints } from './constraint.js';
export type { Constraint, ConstraintOp } from './constraint.js';
export { compileFilters, explainFailures, countFailures } from './filters.js';
export type { FilterName } from './filters.js';
export type { StrategyName } from './strategy.js';
export { loadOf } from './strategy.js';
export { buildNodeInfos, MAX_RECENT_FAILURES, FAILURE_WINDOW_MS } from './nodeinfo.js';
export type { NodeInfo } from './nodeinfo.js';
