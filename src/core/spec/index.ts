/** Manager object model (services, nodes, tasks) and its validation. */
export * from './types.js';
export { parseServiceSpec, parseNode, parseTask, rejectForbiddenKeys, serviceSpecSchema, nodeSchema, taskSchema, dnsLabelSchema, normalizeNetworks, MAX_ALIASES, MAX_INT } from './validate.js';
export type { ServiceSpecInput, NodeInput } from './validate.js';
export {
  BUILTIN_IMAGE, resolveRuntime, nodeRuntimes, runtimeKind, nodeDescriptionSchema, normalizeDescription, describedAs,
  imageMissingMessage, isImageMissing,
} from './runtime.js';
export type { NodeDescription } from './runtime.js';
export { containerConfigSchema, expandHostname, checkNetnsContainer, normalizeContainer, MOUNT_TYPES, HOSTNAME_PLACEHOLDERS } from './container.js';
export type { ContainerConfig, MountSpec, MountType, HostnameContext } from './container.js';
export { fileRefsSchema, storedFileRefSchema, parseFileRefFlag, targetOf, checkNetnsFiles, FILE_NAME_RE, SECRETS_DIR, DEFAULT_MODE, MAX_FILE_REFS } from './files.js';
export type { FileRef, FileKind } from './files.js';
