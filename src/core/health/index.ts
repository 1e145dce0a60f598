export * from './spec.js';
export * from './policy.js';
