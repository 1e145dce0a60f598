/**
 * Lifeguard suspicion timer (memberlist suspicion.go): starts at the max timeout and shrinks towards the min
 * timeout as independent members confirm the suspicion. Pure data: the owner checks `deadlineAt` on tick.
 */
import { remainingSuspicionTime } from './formulas.js';

export class Suspicion {
  private readonly confirmers = new Set<string>();
  private confirmations = 0;
  deadlineAt: number;

  /**
   * @param incarnation the suspected incarnation (a refutation carries a higher one and cancels the timer)
   * @param from the first suspecter (does not count as a confirmation)
   * @param k confirmations expected before the timeout reaches `minMs`
   */
  constructor(readonly incarnation: number, from: string, readonly startAt: number, readonly k: number,
    readonly minMs: number, readonly maxMs: number) {
    this.confirmers.add(from);
    this.deadlineAt = startAt + remainingSuspicionTime(0, k, 0, minMs, maxMs);
  }

  get confirmationCount(): number {
    return this.confirmations;
  }

  /** Records an independent confirmation; returns true when it is new (worth re-broadcasting). */
  confirm(from: string): boolean {
    if (this.confirmations >= this.k || this.confirmers.has(from)) return false;
    this.confirmers.add(from);
    this.confirmations++;
    this.deadlineAt = this.startAt + remainingSuspicionTime(this.confirmations, this.k, 0, this.minMs, this.maxMs);
    return true;
  }
}
