import type { Logger } from '../logger.ts';
import { Batcher, type BatchEntry } from './batcher.ts';
import type { DocumentSegments } from './documents.ts';
import { DecisionRejectedError, StoreUnavailableError, describeError, isConfigurationError, isDataError } from './errors.ts';
import { migrate } from './migrate.ts';
import * as repo from './repository.ts';
import type { PreparedDecision } from './repository.ts';
import type { Spool } from './spool.ts';
import type { SqlDriver } from './sql-driver.ts';
import type { DecisionRecord, DecisionStore, FeedbackItem, FeedbackResult, StoreHealth, StoredDecision } from './types.ts';
import { normalizeRecord } from './validate.ts';

export interface StoreSettings {
  logger: Logger;
  /** null: no fallback, a save fails when the database does. */
  spool: Spool | null;
  commitTimeoutMs: number;
  retryIntervalMs: number;
  maxBatch: number;
  /** Batches committed at the same time (PGlite runs one at a time anyway). */
  concurrency: number;
  /** Reads and purges the document segments the driver appends to (storeWithDocuments); null: documents are in the tables. */
  documents: DocumentSegments | null;
  /** Called once on close, after the driver is closed (releases the dataDir lock). */
  onClose?: () => Promise<void>;
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The decision store over either engine. Saves are group-committed; a save whose commit fails
 * for lack of a database, or does not finish within commitTimeoutMs, is answered from the
 * durable spool instead, and while the database is down saves go straight to the spool. A
 * background task brings the database back and replays the spool.
 */
export class SqlDecisionStore implements DecisionStore {
  readonly engine: 'pglite' | 'postgres';
  readonly #driver: SqlDriver;
  readonly #settings: StoreSettings;
  readonly #log: Logger;
  readonly #batcher: Batcher<PreparedDecision>;
  #up = true;
  #needsMigration = false;
  #recovering: Promise<void> | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(driver: SqlDriver, settings: StoreSettings) {
    this.engine = driver.engine;
    this.#driver = driver;
    this.#settings = settings;
    this.#log = settings.logger;
    this.#batcher = new Batcher((entries) => this.#commit(entries), { maxBatch: settings.maxBatch, concurrency: settings.concurrency });
  }

  /**
   * Migrates and starts. An unreachable database is not fatal when there is a spool (the
   * service answers, and migrates once the database is back); a wrong password, a missing
   * database or a failing migration is.
   */
  static async open(driver: SqlDriver, settings: StoreSettings): Promise<SqlDecisionStore> {
    const store = new SqlDecisionStore(driver, settings);
    try {
      await migrate(driver, settings.logger);
    } catch (err) {
      if (!settings.spool || isConfigurationError(err)) throw err;
      store.#needsMigration = true;
      store.#markDown(err);
    }
    if (settings.spool) {
      await settings.spool.init();
      store.#retryTimer = setInterval(() => store.#tick(), settings.retryIntervalMs);
      store.#retryTimer.unref();
      if (store.#up && settings.spool.pending > 0) store.#tick();
    }
    return store;
  }

  save(record: DecisionRecord): Promise<void> {
    let prepared: PreparedDecision;
    try {
      prepared = repo.prepareDecision(normalizeRecord(record));
    } catch (err) {
      return Promise.reject(err);
    }
    return this.savePrepared(prepared);
  }

  savePrepared(prepared: PreparedDecision): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('decision store is closed'));
    if (!this.#up && this.#settings.spool) return this.#toSpool([prepared]);
    const entry = this.#batcher.submit(prepared);
    const timer = setTimeout(() => {
      if (entry.settled) return;
      this.#markDown(new StoreUnavailableError(`commit took longer than ${this.#settings.commitTimeoutMs} ms`));
      void this.#divert([entry]);
    }, this.#settings.commitTimeoutMs);
    const clear = (): void => clearTimeout(timer);
    entry.promise.then(clear, clear);
    return entry.promise;
  }

  /** Batcher flush: one statement (so one commit) for the whole batch. */
  async #commit(entries: BatchEntry<PreparedDecision>[]): Promise<void> {
    try {
      await repo.insertDecisions(this.#driver, entries.map((e) => e.item));
      for (const e of entries) e.resolve();
    } catch (err) {
      if (isDataError(err)) {
        if (entries.length === 1 && entries[0]) {
          this.#log.error({ err: describeError(err) }, 'decision store: record rejected by the database');
          entries[0].reject(new DecisionRejectedError('decision record rejected by the database', { cause: err }));
          return;
        }
        // One bad record must not fail its neighbours: commit them one by one.
        for (const e of entries) await this.#commit([e]);
        return;
      }
      this.#markDown(err);
      await this.#divert(entries);
    }
  }

  /** Answers entries from the spool; without a spool (or if it fails) they are rejected. */
  async #divert(entries: BatchEntry<PreparedDecision>[]): Promise<void> {
    const open = entries.filter((e) => !e.settled);
    if (open.length === 0) return;
    try {
      await this.#toSpool(open.map((e) => e.item));
      for (const e of open) e.resolve();
    } catch (err) {
      for (const e of open) e.reject(err);
    }
  }

  async #toSpool(decisions: PreparedDecision[]): Promise<void> {
    const spool = this.#settings.spool;
    if (!spool) throw new StoreUnavailableError('decision store unavailable and no spool configured');
    try {
      await spool.append(decisions.map(repo.spoolLine));
    } catch (err) {
      this.#log.error({ err: describeError(err) }, 'decision store: spool write failed, record not acknowledged');
      throw new StoreUnavailableError('decision store unavailable and the spool write failed', { cause: err });
    }
  }

  #markDown(err: unknown): void {
    if (!this.#up) return;
    this.#up = false;
    this.#log.warn({ err: describeError(err) }, 'decision store: database unavailable, saving to the local spool');
  }

  #tick(): void {
    const spool = this.#settings.spool;
    if (this.#closed || this.#recovering || !spool) return;
    if (this.#up && spool.pending === 0) return;
    // A stuck commit still holds a connection; try again once it has ended (or timed out).
    if (!this.#up && this.#batcher.inFlight >= this.#settings.concurrency) return;
    this.#recovering = this.#recover(spool).finally(() => {
      this.#recovering = undefined;
    });
  }

  async #recover(spool: Spool): Promise<void> {
    try {
      if (!this.#up) {
        if (this.#needsMigration) {
          await migrate(this.#driver, this.#log);
          this.#needsMigration = false;
        } else {
          await withTimeout(this.#driver.query('SELECT 1'), this.#settings.commitTimeoutMs, 'database probe');
        }
        this.#up = true;
        this.#log.info({ spooled: spool.pending }, 'decision store: database available again');
      }
      const replayed = await spool.replay((records, lines) => this.#replayBatch(spool, records, lines));
      if (replayed > 0) this.#log.info({ replayed }, 'decision store: spool replayed');
    } catch (err) {
      if (!this.#closed) this.#markDown(err);
    }
  }

  async #replayBatch(spool: Spool, records: DecisionRecord[], lines: string[]): Promise<void> {
    if (this.#closed) throw new Error('decision store closing');
    const valid: PreparedDecision[] = [];
    const validLines: string[] = [];
    const invalid: string[] = [];
    records.forEach((r, i) => {
      try {
        valid.push(repo.prepareDecision(normalizeRecord(r)));
        validLines.push(lines[i] ?? JSON.stringify(r));
      } catch {
        invalid.push(lines[i] ?? JSON.stringify(r));
      }
    });
    await spool.quarantine(invalid, 'invalid record');
    try {
      await repo.insertDecisions(this.#driver, valid, { linkFeedback: true });
    } catch (err) {
      if (!isDataError(err)) throw err;
      for (const [i, r] of valid.entries()) {
        try {
          await repo.insertDecisions(this.#driver, [r], { linkFeedback: true });
        } catch (one) {
          if (!isDataError(one)) throw one;
          await spool.quarantine([validLines[i] ?? repo.spoolLine(r)], describeError(one).message);
        }
      }
    }
  }

  saveFeedback(serviceId: string, clientIss: string | null, items: FeedbackItem[]): Promise<FeedbackResult> {
    return withTimeout(repo.insertFeedback(this.#driver, serviceId, clientIss, items), this.#settings.commitTimeoutMs, 'storing feedback');
  }

  findByAssertionId(assertionId: string): Promise<StoredDecision | undefined> {
    const segments = this.#settings.documents;
    return repo.findByAssertionId(this.#driver, assertionId, segments ? (ref, id) => segments.read(ref, id) : undefined);
  }

  /** Deletes the decisions received before `cutoff`, then the document segments nothing points into any more. */
  async purgeOlderThan(cutoff: Date): Promise<number> {
    const deleted = await repo.purgeOlderThan(this.#driver, cutoff);
    await this.#settings.documents?.purgeBefore(cutoff.toISOString().slice(0, 10), (segment, day) => repo.segmentStillReferenced(this.#driver, segment, day));
    return deleted;
  }

  async health(): Promise<StoreHealth> {
    const spooled = this.#settings.spool?.pending ?? 0;
    if (this.#closed || !this.#up) return { ok: false, engine: this.engine, spooled };
    try {
      await withTimeout(this.#driver.query('SELECT 1'), this.#settings.commitTimeoutMs, 'database probe');
      return { ok: true, engine: this.engine, spooled };
    } catch (err) {
      this.#markDown(err);
      return { ok: false, engine: this.engine, spooled };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#retryTimer);
    // Queued saves still commit (or reach the spool through their timeout) before the driver goes.
    await withTimeout(this.#batcher.idle(), this.#settings.commitTimeoutMs * 2, 'draining saves').catch(() => undefined);
    await this.#settings.spool?.idle();
    await this.#recovering;
    try {
      await this.#driver.close();
    } finally {
      await this.#settings.onClose?.();
    }
  }
}
