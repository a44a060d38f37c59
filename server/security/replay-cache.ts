/**
 * Remembers (iss, jti) pairs until the token they came from can no longer be accepted, so a
 * captured JWT cannot be replayed. In-memory: with several service instances a replay could land on
 * another instance, so run one instance or put the cache in shared storage.
 */
export class ReplayCache {
  private readonly entries = new Map<string, number>();
  /** Earliest expiry among entries; a sweep before then cannot free anything. */
  private earliestExpiry = Number.POSITIVE_INFINITY;

  constructor(private readonly maxEntries: number) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Records the pair. Returns 'replay' if it is already present and unexpired, 'full' if the cache
   * cannot take it without forgetting an unexpired entry (the caller must reject the token then).
   */
  remember(iss: string, jti: string, expiresAtMs: number, nowMs: number): 'ok' | 'replay' | 'full' {
    const key = `${iss}\u0000${jti}`;
    const existing = this.entries.get(key);
    if (existing !== undefined && existing > nowMs) return 'replay';
    if (existing === undefined && this.entries.size >= this.maxEntries) {
      if (nowMs >= this.earliestExpiry) this.sweep(nowMs);
      if (this.entries.size >= this.maxEntries) return 'full';
    }
    this.entries.set(key, expiresAtMs);
    if (expiresAtMs < this.earliestExpiry) this.earliestExpiry = expiresAtMs;
    return 'ok';
  }

  /** Drops expired entries; O(n), run only when the cache is full and something has expired. */
  sweep(nowMs: number): void {
    let earliest = Number.POSITIVE_INFINITY;
    for (const [key, expiry] of this.entries) {
      if (expiry <= nowMs) this.entries.delete(key);
      else if (expiry < earliest) earliest = expiry;
    }
    this.earliestExpiry = earliest;
  }
}
