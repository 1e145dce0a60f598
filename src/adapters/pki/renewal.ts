/**
 * When a node renews its certificate. Swarm renews at a random point between 50% and
 * 80% of the validity so that nodes joined together do not all renew together; we keep
 * the spread but take the jitter as an argument (0..1) so the formula stays testable.
 */

/** Default fraction of the validity after which renewal starts. */
export const RENEW_AFTER_FRACTION = 0.5;
/** Width of the jitter window, as a fraction of the validity. */
export const RENEW_JITTER_FRACTION = 0.3;

/**
 * Epoch ms at which a certificate valid from `notBefore` to `notAfter` (epoch ms) should
 * be renewed; `jitter` ∈ [0,1] picks a point in [50%, 80%] of the validity.
 */
export function renewalTime(notBefore: number, notAfter: number, jitter: number, afterFraction = RENEW_AFTER_FRACTION, jitterFraction = RENEW_JITTER_FRACTION): number {
  const validity = Math.max(0, notAfter - notBefore);
  const j = Number.isFinite(jitter) ? Math.min(1, Math.max(0, jitter)) : 0;
  return notBefore + Math.floor(validity * (afterFraction + jitterFraction * j));
}

/** Whether the certificate is due for renewal at `now` (already expired ones are due too). */
export function renewalDue(notBefore: number, notAfter: number, now: number, jitter = 0): boolean {
  return now >= renewalTime(notBefore, notAfter, jitter);
}
