/**
 * Transmit-limited broadcast queue (memberlist's TransmitLimitedQueue, NetworkDB's priority for local updates).
 * Messages piggyback on probes and gossip packets; each is sent at most `limit` times
 * (retransmitLimit(mult, N)); a newer message with the same key (same member, same table key, same
 * node×network) replaces the older one. Order: local updates first, then least-transmitted, then newest.
 */

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

export class BroadcastQueue {
  private readonly byKey = new Map<string, Queued>();
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
    this.byKey.delete(item.key);
    this.byKey.set(item.key, { ...item, transmits: 0, id: this.nextId++ });
    if (this.byKey.size > this.maxItems) this.prune(this.maxItems);
  }

  /** Drops the message with this key, if queued (e.g. its news became obsolete). */
  invalidate(key: string): void {
    this.byKey.delete(key);
  }

  /** Keeps at most `max` messages, dropping the most-transmitted / oldest ones. */
  prune(max: number): void {
    if (this.byKey.size <= max) return;
    const all = this.ordered();
    for (let i = max; i < all.length; i++) {
      this.byKey.delete(all[i]!.key);
      this.dropped++;
    }
  }

  private ordered(): Queued[] {
    const all = [...this.byKey.values()];
    all.sort((a, b) => (a.local === b.local ? 0 : a.local ? -1 : 1) || a.transmits - b.transmits || b.id - a.id);
    return all;
  }

  /**
   * Picks messages whose encoded sizes plus `overheadPerItem` fit in `budgetBytes`, counts one transmit each and
   * retires those that reached `limit`. `accept` filters per destination (network scope). When `oversizeAlone`
   * is set and nothing fits, the first acceptable message is returned alone (sent as its own, fragmenting, packet).
   */
  take(budgetBytes: number, overheadPerItem: number, limit: number, maxItems: number,
    accept: (b: BroadcastItem) => boolean = () => true, oversizeAlone = false): Uint8Array[] {
    if (this.byKey.size === 0 || budgetBytes <= 0) return [];
    const out: Queued[] = [];
    let used = 0;
    let firstTooBig: Queued | undefined;
    for (const q of this.ordered()) {
      if (out.length >= maxItems) break;
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
    for (const q of out) {
      q.transmits++;
      if (q.transmits >= limit) this.byKey.delete(q.key);
    }
    return out.map((q) => q.bytes);
  }

  /** Clears everything (used when leaving after the flush window). */
  clear(): void {
    this.byKey.clear();
  }
}
