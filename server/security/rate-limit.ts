import type { Request, RequestHandler, Response } from 'express';
import { operationOutcome } from '../http/operation-outcome.ts';

/**
 * Per-client token bucket. Mount after client authentication so the key is the verified `iss`;
 * with authentication off the key is the remote address.
 */

export interface RateLimiterOptions {
  /** Sustained requests per minute per client; also the burst size unless `burst` is given. */
  perMinute: number;
  burst?: number;
  /** Most clients tracked at once; least recently seen are forgotten first. Default 10000. */
  maxKeys?: number;
  /** Clock in epoch milliseconds (tests). */
  now?: () => number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

function keyOf(req: Request, res: Response): string {
  const iss: unknown = res.locals.clientIss;
  if (typeof iss === 'string') return `iss:${iss}`;
  return `ip:${req.ip ?? req.socket.remoteAddress ?? 'unknown'}`;
}

export function createRateLimiter(options: RateLimiterOptions): RequestHandler {
  if (!(options.perMinute > 0)) throw new TypeError('perMinute must be positive');
  const capacity = Math.max(1, options.burst ?? options.perMinute);
  const refillPerMs = options.perMinute / 60_000;
  const maxKeys = options.maxKeys ?? 10_000;
  const now = options.now ?? Date.now;
  // Map iteration order is insertion order; re-inserting on each hit makes it LRU.
  const buckets = new Map<string, Bucket>();

  return (req, res, next) => {
    const key = keyOf(req, res);
    const t = now();
    const previous = buckets.get(key);
    const bucket: Bucket = previous
      ? { tokens: Math.min(capacity, previous.tokens + (t - previous.updatedAt) * refillPerMs), updatedAt: t }
      : { tokens: capacity, updatedAt: t };
    buckets.delete(key);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      buckets.set(key, bucket);
      // An idle client's bucket is full again within a minute, so forgetting the oldest is cheap.
      while (buckets.size > maxKeys) {
        const oldest = buckets.keys().next().value;
        if (oldest === undefined) break;
        buckets.delete(oldest);
      }
      next();
      return;
    }
    buckets.set(key, bucket);
    const retryAfterSeconds = Math.max(1, Math.ceil((1 - bucket.tokens) / refillPerMs / 1000));
    res
      .status(429)
      .set('Retry-After', String(retryAfterSeconds))
      .json(operationOutcome([{ code: 'throttled', diagnostics: `Too many requests; retry after ${retryAfterSeconds} s` }]));
  };
}
