import http from 'node:http';
import { LatencyRecorder, type Measured } from './stats.ts';

/**
 * An open-loop load generator at a fixed rate: request i is issued at start + i/rate whatever
 * happened to the earlier ones, over a pool of keep-alive connections. Latency runs from the moment
 * a request is issued, so time spent queued for a free connection when the server falls behind is
 * counted (no coordinated omission). autocannon's `overallRate` instead lets each connection send
 * its whole per-second quota back to back at the top of every second, which measures bursts.
 */
export interface PacedOptions {
  host: string;
  port: number;
  path: string;
  /** A fresh request body per call (e.g. with its own hookInstance). */
  body: () => Buffer;
  rate: number;
  seconds: number;
  /** Most connections open at once; requests beyond it wait for a free one. */
  maxSockets: number;
  timeoutMs?: number;
}

export function runPaced(options: PacedOptions): Promise<Measured> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
  const recorder = new LatencyRecorder();
  const total = Math.max(1, Math.round(options.rate * options.seconds));
  const intervalMs = 1000 / options.rate;
  const timeoutMs = options.timeoutMs ?? 10_000;
  let issued = 0;
  let settled = 0;
  let clientLagMax = 0;
  const start = performance.now() + 5;

  return new Promise((resolve) => {
    const finish = () => {
      settled += 1;
      if (settled === total) {
        const seconds = (performance.now() - start) / 1000;
        agent.destroy();
        resolve({ ...recorder.summary(seconds), offeredRate: options.rate, clientLagMax });
      }
    };

    const issue = (scheduledAt: number) => {
      const issuedAt = performance.now();
      clientLagMax = Math.max(clientLagMax, issuedAt - scheduledAt);
      const body = options.body();
      let done = false;
      const settle = (status: number | undefined) => {
        if (done) return;
        done = true;
        if (status === undefined) recorder.error();
        else recorder.response(status, performance.now() - issuedAt);
        finish();
      };
      const req = http.request(
        {
          agent,
          host: options.host,
          port: options.port,
          path: options.path,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
        },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => settle(res.statusCode ?? 0));
          res.on('error', () => settle(undefined));
        },
      );
      req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
      req.on('error', () => settle(undefined));
      req.end(body);
    };

    const tick = () => {
      const now = performance.now();
      while (issued < total && start + issued * intervalMs <= now) {
        issue(start + issued * intervalMs);
        issued += 1;
      }
      if (issued < total) {
        const next = start + issued * intervalMs - performance.now();
        setTimeout(tick, Math.max(0, Math.floor(next)));
      }
    };
    setTimeout(tick, 5);
  });
}
