export { parseCompose, composeFromObject, type ParseOptions, type ComposeFile, type ComposeService, type ComposePort } from './parse.js';
export type { ComposeNetwork } from './networks.js';
export { parseComposeDuration, shellSplit, editDistance } from './fields.js';
export { translateStack, validateStackName, stackObjectName, stackOf, isStackNetworkName, STACK_ENV, type StackPlan, type StackNetwork } from './translate.js';
export { planDeploy, sameServiceSpec, type DeployStep, type ExistingService } from './diff.js';
export { interpolate, interpolateString, type EnvLookup } from './interpolate.js';
