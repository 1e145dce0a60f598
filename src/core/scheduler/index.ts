/** Pure task placement: constraints, filters, spread/binpack/random, placement preferences. */
export { schedule, preferenceValue } from './scheduler.js';
export type { Assignment, ScheduleOptions, ScheduleResult, Unschedulable } from './scheduler.js';
export { parseConstraint, matchConstraint, compileConstraints } from './constraint.js';
export type { Constraint, ConstraintOp } from './constraint.js';
export { compileFilters, explainFailures, countFailures, countRuntime, FILTER_ORDER } from './filters.js';
export type { FilterName, ExplainContext } from './filters.js';
export { IMAGE_MISSING_TTL_MS, missingImageOf } from './image.js';
export type { StrategyName } from './strategy.js';
export { loadOf } from './strategy.js';
export { buildNodeInfos, MAX_RECENT_FAILURES, FAILURE_WINDOW_MS } from './nodeinfo.js';
export type { NodeInfo } from './nodeinfo.js';
