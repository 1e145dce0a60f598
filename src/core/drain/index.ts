/** Drain confirmation through the gossip tables: see acks.ts. */
export {
  DRAIN_ACK_TABLE, DEFAULT_DRAIN_ACK_TIMEOUT_MS, ackKey, parseAckKey, encodeAck, decodeAck, awaitsAck, pendingAcks, drainOutcome, ackAction,
  type AckValue, type NetworkAcks, type DrainOutcome,
} from './acks.js';
