/** One submitted item; settling is idempotent so a timeout and a late commit cannot both answer. */
export class BatchEntry<T> {
  settled = false;
  readonly promise: Promise<void>;
  #resolve!: () => void;
  #reject!: (err: unknown) => void;

  constructor(readonly item: T) {
    this.promise = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  resolve(): void {
    if (this.settled) return;
    this.settled = true;
    this.#resolve();
  }

  reject(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.#reject(err);
  }
}

export interface BatcherOptions {
  maxBatch: number;
  /** Batches written at the same time. */
  concurrency: number;
}

/**
 * Group commit: items submitted while a batch is being written wait and go together in the next
 * one, so the cost of a commit (or an fsync) is shared. `flush` must settle every entry; any
 * entry it leaves unsettled, or all of them if it throws, is rejected.
 */
export class Batcher<T> {
  #queue: BatchEntry<T>[] = [];
  #inFlight = 0;
  #scheduled = false;
  #idle: (() => void)[] = [];

  constructor(
    private readonly flush: (entries: BatchEntry<T>[]) => Promise<void>,
    private readonly options: BatcherOptions,
  ) {}

  get busy(): boolean {
    return this.#inFlight > 0 || this.#queue.length > 0;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  submit(item: T): BatchEntry<T> {
    const entry = new BatchEntry(item);
    this.#queue.push(entry);
    if (!this.#scheduled) {
      // Wait for the current tick so callers started together share the first batch too.
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#pump();
      });
    }
    return entry;
  }

  /** Resolves when nothing is queued or being written. */
  idle(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #pump(): void {
    while (this.#inFlight < this.options.concurrency && this.#queue.length > 0) {
      // Entries already answered another way (timeout → spool) need no commit.
      const batch = this.#queue.splice(0, this.options.maxBatch).filter((e) => !e.settled);
      if (batch.length === 0) continue;
      this.#inFlight++;
      void this.#run(batch);
    }
    if (!this.busy) for (const wake of this.#idle.splice(0)) wake();
  }

  async #run(batch: BatchEntry<T>[]): Promise<void> {
    try {
      await this.flush(batch);
      for (const e of batch) if (!e.settled) e.reject(new Error('batch flush left the entry unsettled'));
    } catch (err) {
      for (const e of batch) e.reject(err);
    } finally {
      this.#inFlight--;
      this.#pump();
    }
  }
}
