/**
 * The `meshd_convergence_seconds` histogram's counts (pure; rendered by src/agent/metrics.ts):
 * publication → last node holding a change, observed once per completed change on each node that
 * collects acks. Buckets cover 10 ms to 10 s: the goal is p99 < 1 s, Docker swarm's floor is a 2 s sleep.
 */
export const CONVERGENCE_BUCKETS_S: readonly number[] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

export class ConvergenceHistogram {
  /** counts[i] = observations ≤ bucket i and > bucket i-1; the last slot is +Inf. */
  readonly counts: number[] = CONVERGENCE_BUCKETS_S.map(() => 0).concat(0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    let i = CONVERGENCE_BUCKETS_S.findIndex((b) => seconds <= b);
    if (i < 0) i = CONVERGENCE_BUCKETS_S.length;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  /** Prometheus text (cumulative buckets). */
  render(name: string, labels: string): string {
    const l = labels ? `,${labels}` : '';
    const lines = [`# HELP ${name} Time from an endpoint's publication to the last node whose LB and DNS hold it`, `# TYPE ${name} histogram`];
    let cum = 0;
    CONVERGENCE_BUCKETS_S.forEach((b, i) => {
      cum += this.counts[i]!;
      lines.push(`${name}_bucket{le="${b}"${l}} ${cum}`);
    });
    cum += this.counts[CONVERGENCE_BUCKETS_S.length]!;
    lines.push(`${name}_bucket{le="+Inf"${l}} ${cum}`);
    lines.push(`${name}_sum${labels ? `{${labels}}` : ''} ${this.sum}`);
    lines.push(`${name}_count${labels ? `{${labels}}` : ''} ${this.count}`);
    return lines.join('\n') + '\n';
  }
}
