/** Convergence receipts: acks for additions and changes (acks.ts), their collection (collect.ts), the histogram. */
export {
  CONVERGENCE_ACK_TABLE, DEFAULT_CONVERGENCE_ACK_TTL_MS, DEFAULT_CONVERGENCE_MAX_ACKS, recordRev, encodeConvergenceAck, decodeConvergenceAck, ConvergenceAcks,
  type ConvergenceAck, type ConvergenceAction, type ConvergenceAcksOptions, type RevFields,
} from './acks.js';
export {
  ConvergenceBook, changeOf, parseConvergenceKey, serviceConvergence, formatServiceConvergence, type ChangeView, type ServiceConvergence,
} from './collect.js';
export { ConvergenceHistogram, CONVERGENCE_BUCKETS_S } from './histogram.js';
export { holdsBackend, lbProgrammed, type NsProgrammedView } from './programmed.js';
