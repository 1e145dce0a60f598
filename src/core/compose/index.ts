export { parseCompose, composeFromObject, type ParseOptions, type ComposeFile, type ComposeService, type ComposeNetwork, type ComposePort } from './parse.js';
export { parseComposeDuration, shellSplit, editDistance } from './fields.js';
export { translateStack, validateStackName, stackObjectName, stackOf, isStackNetworkName, STACK_ENV, type StackPlan, type StackNetwork } from './translate.js';
export { planDeploy, sameServiceSpec, type DeployStep, type ExistingService } from './diff.js';
export { interpolate, interpolateString, type EnvLookup } from './interpolate.js';
