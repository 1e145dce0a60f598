/**
 * Transmit-limited broadcast queue (memberlist's TransmitLimitedQueue), with a bounded share of each packet for relays.
 * Messages piggyback on probes and gossip packets; each is sent at most `limit` times
 * (retransmitLimit(mult, N)); a newer message with the same key (same member, same table key, same
 * node×network) replaces the older one.
 *
 * Order (issue 18 §1): within local updates and within relays (others' news), fewest transmits first, then
 * newest (memberlist's order). Each take() gives relays a bounded share first — up to RELAY_SHARE of its bytes —
 * then local updates, then relays again with whatever the locals left. The old rule (every local update before
 * any relay, NetworkDB's priority) starved relays under sustained local writes: a node writing ~30 records/s
 * filled every packet with its own news, so it never passed on others' and a node with no writer heard a
 * record only from its origin's few sends or the next push-pull (9–12 s at 100 changes/s). Eviction when full
 * takes the most-transmitted, oldest message whatever its origin: with relays evicted first, every local
 * write at the cap dropped a relay at once.
 *
 * Why a sorted structure and not a sort per call: under churn (~90 endpoint changes/s) the queue sits at its
 * cap (4,096) and the old code sorted all of it on every take() and, once full, on every new message
 * (2.8 ms per message, 3.7 ms per take: a third of a core per agent). memberlist keeps a btree ordered by
 * (transmits, size, newest) plus a name map; we keep two block-sorted lists, local and relay (sorted blocks of ≤ BLOCK items,
 * binary search over block ends), each ordered by (transmits, newest), plus a key map. Costs: queue / replace /
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

/**
 * Share of a take()'s bytes offered to relays before local updates (the rest, and whatever locals leave, goes
 * to either). Half: a writing node still sends its own news at least at half its budget, and passes on others'
 * at least at the other half when both are waiting.
 */
export const RELAY_SHARE = 0.5;

/** Send order within one class: fewest transmits, then newest (highest id). Ids are unique, so this is total. */
function cmp(a: Queued, b: Queued): number {
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

  /** The last item in send order. */
  last(): Queued | undefined {
    const block = this.blocks[this.blocks.length - 1];
    return block?.[block.length - 1];
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

/**
 * A take() walk ends after this many messages in a row that it examined and did not pick (too big for what is
 * left of the budget, or not for this destination's networks). Without it, a packet with a little budget left
 * scanned the whole queue for a message small enough (up to maxBroadcastQueue, 4,096): a 10-node lab agent at 100
 * endpoint changes/s, its queue full, spent ~10 % of its busy time in that walk, once per datagram it sent. What
 * a walk leaves is sent in the next packets; a destination's own news is at most this far behind news for others.
 */
export const WALK_MISS_LIMIT = 64;

export class BroadcastQueue {
  private readonly byKey = new Map<string, Queued>();
  /** Local updates and relays, each in send order. */
  private readonly locals = new SortedBlocks();
  private readonly relays = new SortedBlocks();
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
    this.listOf(q).insert(q);
    this.countLen(q.bytes.length, 1);
    if (this.byKey.size > this.maxItems) this.prune(this.maxItems);
  }

  /** Drops the message with this key, if queued (e.g. its news became obsolete). */
  invalidate(key: string): void {
    const q = this.byKey.get(key);
    if (q) this.forget(q);
  }

  /** Keeps at most `max` messages, dropping the most-transmitted / oldest ones (local or relay alike). */
  prune(max: number): void {
    while (this.byKey.size > max) {
      const l = this.locals.last();
      const r = this.relays.last();
      const q = (!r || (l && cmp(l, r) > 0) ? this.locals : this.relays).popLast()!;
      this.byKey.delete(q.key);
      this.countLen(q.bytes.length, -1);
      this.dropped++;
    }
  }

  /**
   * Picks messages whose encoded sizes plus `overheadPerItem` fit in `budgetBytes`, counts one transmit each and
   * retires those that reached `limit`. `accept` filters per destination (network scope). Relays first within
   * RELAY_SHARE of the budget, then local updates, then relays again (file comment); returned locals first, each
   * class in send order.
   * When `oversizeAlone` is set and nothing fits, the first acceptable message (local before relay) is returned
   * alone (sent as its own, fragmenting, packet). A message that does not fit is skipped and smaller later ones
   * are still tried, but a walk ends once not even the smallest queued message would fit, or after WALK_MISS_LIMIT
   * messages in a row it could not take.
   */
  take(budgetBytes: number, overheadPerItem: number, limit: number, maxItems: number,
    accept: (b: BroadcastItem) => boolean = () => true, oversizeAlone = false): Uint8Array[] {
    if (this.byKey.size === 0 || budgetBytes <= 0) return [];
    const minCost = this.smallestLen() + overheadPerItem;
    const picked = new Set<Queued>();
    const relays: Queued[] = [];
    const locals: Queued[] = [];
    let used = 0;
    const walk = (list: SortedBlocks, upTo: number, into: Queued[]): void => {
      let misses = 0;
      for (const q of list) {
        if (picked.size >= maxItems || used + minCost > upTo || misses >= WALK_MISS_LIMIT) return;
        if (picked.has(q)) continue;
        const cost = q.bytes.length + overheadPerItem;
        if (used + cost > upTo || !accept(q)) {
          misses++;
          continue;
        }
        misses = 0;
        used += cost;
        picked.add(q);
        into.push(q);
      }
    };
    walk(this.relays, Math.floor(budgetBytes * RELAY_SHARE), relays);
    walk(this.locals, budgetBytes, locals);
    walk(this.relays, budgetBytes, relays);
    if (picked.size === 0 && oversizeAlone && maxItems > 0) {
      // nothing fit at all: every acceptable message is larger than the budget
      const first = (list: SortedBlocks) => { for (const q of list) if (accept(q)) return q; return undefined; };
      const q = first(this.locals) ?? first(this.relays);
      if (q) locals.push(q);
    }
    // relays in send order (the two walks interleave it); locals were walked once, already in order
    const out = [...locals, ...relays.sort(cmp)];
    // Re-filed after the walks: moving an item while iterating could visit it twice.
    for (const q of out) {
      const list = this.listOf(q);
      list.remove(q);
      q.transmits++;
      if (q.transmits >= limit) {
        this.byKey.delete(q.key);
        this.countLen(q.bytes.length, -1);
      } else {
        list.insert(q);
      }
    }
    return out.map((q) => q.bytes);
  }

  /** Clears everything (used when leaving after the flush window). */
  clear(): void {
    this.byKey.clear();
    this.locals.clear();
    this.relays.clear();
    this.lengths.clear();
    this.minLen = Infinity;
    this.minLenStale = false;
  }

  private listOf(q: Queued): SortedBlocks {
    return q.local ? this.locals : this.relays;
  }

  private forget(q: Queued): void {
    this.byKey.delete(q.key);
    this.listOf(q).remove(q);
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
