/** Convergence receipts: acks for additions and changes (acks.ts, wire format snapshot.ts), their collection (collect.ts), the histogram. */
export {
  CONVERGENCE_ACK_TABLE, DEFAULT_CONVERGENCE_ACK_TTL_MS, DEFAULT_CONVERGENCE_MIN_WRITE_MS, ACK_WRITE_MS_PER_MEMBER, ackWriteIntervalMs, recordRev, encodeConvergenceAck, decodeConvergenceAck, ConvergenceAcks,
  type ConvergenceAck, type ConvergenceAction, type ConvergenceAcksOptions, type RevFields,
} from './acks.js';
export {
  BUCKET_TASKS, bucketCount, bucketOf, decodeSnapshot, encodeSnapshot, parseSnapshotKey, snapshotKey, taskHash,
  type ProgrammedSnapshot, type SnapshotItem,
} from './snapshot.js';
export {
  ConvergenceBook, changeOf, parseConvergenceKey, serviceConvergence, formatServiceConvergence, type ChangeView, type NodeAck, type ServiceConvergence,
} from './collect.js';
export { ConvergenceHistogram, CONVERGENCE_BUCKETS_S } from './histogram.js';
export { holdsBackend, lbProgrammed, type NsProgrammedView } from './programmed.js';
