/**
 * The endpoint-codec gate at the gossip edge, shared by the writers of endpoint records (the worker's task
 * records, agent/worker/mesh.ts; the LB's ingress records, agent/lb/ingress-records.ts): a node says in
 * ENDPOINT_CODEC_TABLE on a network which encodings it reads, and writes compact records there only while every
 * node on the network has said it reads them (core/endpoints.ts compactAllowed; a node whose word has not
 * arrived counts as one that does not).
 */
import { compactAllowed, ENDPOINT_CODEC_TABLE, ENDPOINT_CODECS, type EndpointEncoding } from '../../core/endpoints.js';
import type { GossipPort } from '../overlay/overlay.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The encoding `self` may write endpoint records in on `network` now. */
export function allowedEncoding(core: GossipPort['core'], network: string, self: string): EndpointEncoding {
  const codecs = new Map(core.tableEntries(network, ENDPOINT_CODEC_TABLE).map((e) => [e.key, dec.decode(e.value)]));
  const nodes = new Set([...core.networkNodes(network), self]);
  return compactAllowed([...nodes], codecs) ? 'compact' : 'json';
}

/** Says on `network` which encodings `self` reads (written once: the entry stays while the node is on it). */
export function sayCodecs(core: GossipPort['core'], network: string, self: string, now: number): void {
  const mine = core.tableEntries(network, ENDPOINT_CODEC_TABLE).find((e) => e.key === self && e.owner === self);
  if (mine && dec.decode(mine.value) === ENDPOINT_CODECS) return;
  core.tableSet(network, ENDPOINT_CODEC_TABLE, self, enc.encode(ENDPOINT_CODECS), now);
}
