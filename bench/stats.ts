/** What one measured load run reports. Latencies are in milliseconds. */
export interface Measured {
  /** Responses received (any status). */
  completed: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  statusCounts: Record<string, number>;
  /** Paced runs: the offered rate, and how late the client itself was in sending (ms, max). */
  offeredRate?: number;
  clientLagMax?: number;
}

/** Collects per-response latencies and status codes. */
export class LatencyRecorder {
  private readonly latencies: number[] = [];
  readonly statusCounts: Record<string, number> = {};
  non2xx = 0;
  errors = 0;

  response(status: number, ms: number): void {
    this.latencies.push(ms);
    const key = String(status);
    this.statusCounts[key] = (this.statusCounts[key] ?? 0) + 1;
    if (status < 200 || status > 299) this.non2xx += 1;
  }

  error(): void {
    this.errors += 1;
  }

  get count(): number {
    return this.latencies.length;
  }

  summary(seconds: number): Measured {
    const sorted = Float64Array.from(this.latencies).sort();
    return {
      completed: sorted.length,
      seconds,
      rps: seconds > 0 ? sorted.length / seconds : 0,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted.length > 0 ? (sorted[sorted.length - 1] ?? 0) : 0,
      non2xx: this.non2xx,
      errors: this.errors,
      statusCounts: { ...this.statusCounts },
    };
  }
}

/** Nearest-rank percentile of an ascending array; 0 when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? 0;
}
