/**
 * Transmit-limited broadcast queue (memberlist's TransmitLimitedQueue, NetworkDB's priority for local updates).
 * Messages piggyback on probes and gossip packets; each is sent at most `limit` times
 * (retransmitLimit(mult, N)); a newer message with the same key (same member, same table key, same
 * node×network) replaces the older one. Order: local updates first, then least-transmitted, then newest.
 *
 * Why a sorted structure and not a sort per call: under churn (~90 endpoint changes/s) the queue sits at its
 * cap (4,096) and the old code sorted all of it on every take() and, once full, on every new message
 * (2.8 ms per message, 3.7 ms per take: a third of a core per agent). memberlist keeps a btree ordered by
 * (transmits, size, newest) plus a name map; we keep a block-sorted list (sorted blocks of ≤ BLOCK items,
 * binary search over block ends) ordered by (local, transmits, newest) plus a key map. Costs: queue / replace /
 * retire / evict one O(log n + BLOCK); take() walks from the head and stops once its item cap is reached or no
 * queued message can fit the bytes left (a running minimum of message sizes), so a full packet costs
 * O(k·(log n + BLOCK)) for k messages sent, independent of the queue's length. Only messages that `accept`
 * refuses (network-scoped news for a peer outside the network) are walked past one by one.
 * Eviction when full stays one message at a time from the tail (the most-transmitted, oldest): popping the
 * tail is O(1), so batches would only drop news early without saving work.
 *
 * The cap is not what limits news under churn; the send budget is (issue 18 §1, measured 2026-12-07): per node
 * ≈ gossipNodes (3) × 1 packet × maxPacketBytes (1,400) per gossipInterval, plus what fits on probes' pings and
 * acks: ≈ 40 packets ≈ 54 KB/s with `local`, ≈ 23 KB/s with `lan` (memberlist's budget; it has no cap of its
 * own and serf prunes to 4,096). At 90–100 endpoint changes/s on 4 nodes the table news (record ≈ 440 B,
 * tombstone ≈ 70 B, N convergence acks ≈ 180 B and their later deletes) is ≈ 450 messages ≈ 68 KB/s, each
 * sent retransmitLimit (4) times by every node: ≈ 270 KB/s, 5× the `local` budget. The excess is evicted at
 * any cap and push-pull carries it; a larger cap would only queue staler news, which newest-first order
 * never reaches under sustained overload.
 */
import { MeshError } from '../errors.js';

export interface BroadcastItem {
  /** Invalidation key: 'm:<member>', 't:<net>/<table>/<key>', 'n:<node>/<net>'. */
  readonly key: string;
  readonly bytes: Uint8Array;
  /** Originated here (sent before rebroadcasts of others' news). */
  readonly local: boolean;
  /** Network-scoped messages go only to members of that network. */
  readonly network?: string;
}

interface Queued extends BroadcastItem {
  transmits: number;
  id: number;
}

/** Max items per block: splices stay a small memmove, the block index stays short (4,096 → ≥ 32 blocks). */
const BLOCK = 128;

/** Send order: local first, then fewest transmits, then newest (highest id). Ids are unique, so this is total. */
function cmp(a: Queued, b: Queued): number {
  if (a.local !== b.local) return a.local ? -1 : 1;
  return a.transmits - b.transmits || b.id - a.id;
}

/** Sorted list of queued messages in send order, as a list of sorted blocks (none empty). */
class SortedBlocks {
  private blocks: Queued[][] = [];

  /** Index of the first block whose last item is not before `q` (blocks.length when none). */
  private blockFor(q: Queued): number {
    let lo = 0;
    let hi = this.blocks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const b = this.blocks[mid]!;
      if (cmp(b[b.length - 1]!, q) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private static indexIn(block: Queued[], q: Queued): number {
    let lo = 0;
    let hi = block.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cmp(block[mid]!, q) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(q: Queued): void {
    if (this.blocks.length === 0) {
      this.blocks.push([q]);
      return;
    }
    let bi = this.blockFor(q);
    if (bi === this.blocks.length) bi--;
    const block = this.blocks[bi]!;
    block.splice(SortedBlocks.indexIn(block, q), 0, q);
    if (block.length > BLOCK) this.blocks.splice(bi + 1, 0, block.splice(block.length >>> 1));
  }

  /** Removes `q` (must be present, with the transmits/id it was inserted with). */
  remove(q: Queued): void {
    const bi = this.blockFor(q);
    const block = this.blocks[bi];
    const i = block ? SortedBlocks.indexIn(block, q) : -1;
    if (!block || block[i] !== q) throw new MeshError('MESHD_INTERNAL', 'broadcast queue: item not where its order says (bug)', { key: q.key });
    block.splice(i, 1);
    if (block.length === 0) this.blocks.splice(bi, 1);
  }

  /** Removes and returns the last item in send order. */
  popLast(): Queued | undefined {
    const block = this.blocks[this.blocks.length - 1];
    const q = block?.pop();
    if (block && block.length === 0) this.blocks.pop();
    return q;
  }

  *[Symbol.iterator](): IterableIterator<Queued> {
    for (const b of this.blocks) yield* b;
  }

  clear(): void {
    this.blocks = [];
  }
}

export class BroadcastQueue {
  private readonly byKey = new Map<string, Queued>();
  private readonly order = new SortedBlocks();
  /** Queued messages per byte length: the smallest one bounds how far take() needs to look. */
  private readonly lengths = new Map<number, number>();
  private minLen = Infinity;
  private minLenStale = false;
  private nextId = 0;
  private dropped = 0;

  constructor(private readonly maxItems: number) {}

  get size(): number {
    return this.byKey.size;
  }
  /** Messages evicted because the queue was full (most-transmitted first). */
  get evicted(): number {
    return this.dropped;
  }

  /** Queues a message, replacing any older message with the same key. */
  queue(item: BroadcastItem): void {
    const old = this.byKey.get(item.key);
    if (old) this.forget(old);
    const q: Queued = { ...item, transmits: 0, id: this.nextId++ };
    this.byKey.set(q.key, q);
    this.order.insert(q);
    this.countLen(q.bytes.length, 1);
    if (this.byKey.size > this.maxItems) this.prune(this.maxItems);
  }

  /** Drops the message with this key, if queued (e.g. its news became obsolete). */
  invalidate(key: string): void {
    const q = this.byKey.get(key);
    if (q) this.forget(q);
  }

  /** Keeps at most `max` messages, dropping the most-transmitted / oldest ones. */
  prune(max: number): void {
    while (this.byKey.size > max) {
      const q = this.order.popLast()!;
      this.byKey.delete(q.key);
      this.countLen(q.bytes.length, -1);
      this.dropped++;
    }
  }

  /**
   * Picks messages whose encoded sizes plus `overheadPerItem` fit in `budgetBytes`, counts one transmit each and
   * retires those that reached `limit`. `accept` filters per destination (network scope). When `oversizeAlone`
   * is set and nothing fits, the first acceptable message is returned alone (sent as its own, fragmenting, packet).
   * A message that does not fit is skipped and smaller later ones are still tried (as before), but the walk ends
   * once not even the smallest queued message would fit.
   */
  take(budgetBytes: number, overheadPerItem: number, limit: number, maxItems: number,
    accept: (b: BroadcastItem) => boolean = () => true, oversizeAlone = false): Uint8Array[] {
    if (this.byKey.size === 0 || budgetBytes <= 0) return [];
    const minCost = this.smallestLen() + overheadPerItem;
    const out: Queued[] = [];
    let used = 0;
    let firstTooBig: Queued | undefined;
    for (const q of this.order) {
      if (out.length >= maxItems) break;
      if (used + minCost > budgetBytes && (out.length > 0 || firstTooBig)) break;
      if (!accept(q)) continue;
      const cost = q.bytes.length + overheadPerItem;
      if (used + cost > budgetBytes) {
        if (!firstTooBig && out.length === 0) firstTooBig = q;
        continue;
      }
      used += cost;
      out.push(q);
    }
    if (out.length === 0 && oversizeAlone && firstTooBig) out.push(firstTooBig);
    // Re-filed after the walk: moving an item while iterating could visit it twice.
    for (const q of out) {
      this.order.remove(q);
      q.transmits++;
      if (q.transmits >= limit) {
        this.byKey.delete(q.key);
        this.countLen(q.bytes.length, -1);
      } else {
        this.order.insert(q);
      }
    }
    return out.map((q) => q.bytes);
  }

  /** Clears everything (used when leaving after the flush window). */
  clear(): void {
    this.byKey.clear();
    this.order.clear();
    this.lengths.clear();
    this.minLen = Infinity;
    this.minLenStale = false;
  }

  private forget(q: Queued): void {
    this.byKey.delete(q.key);
    this.order.remove(q);
    this.countLen(q.bytes.length, -1);
  }

  private countLen(len: number, delta: 1 | -1): void {
    const n = (this.lengths.get(len) ?? 0) + delta;
    if (n > 0) this.lengths.set(len, n);
    else this.lengths.delete(len);
    if (delta > 0 && len < this.minLen) this.minLen = len;
    if (n === 0 && len === this.minLen) this.minLenStale = true;
  }

  /** Smallest queued message length (distinct lengths are few: member, network and table records). */
  private smallestLen(): number {
    if (this.minLenStale) {
      this.minLen = Infinity;
      for (const len of this.lengths.keys()) if (len < this.minLen) this.minLen = len;
      this.minLenStale = false;
    }
    return this.minLen;
  }
}
