import type { Worker } from 'node:worker_threads';
import type { Logger } from '../logger.ts';
import { startTsWorker } from '../ts-worker.ts';
import type { HookJob, HookReply, HookThreadData, ThreadStatus } from './messages.ts';

/** No hook thread could take (or finish) a job: the caller answers it on its own thread. */
export class HookThreadsUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HookThreadsUnavailableError';
  }
}

/**
 * A job ran past the pool's job timeout: its thread was stopped and replaced, and the job is not
 * run again anywhere (it may be what stuck the thread). The caller has normally answered already.
 */
export class HookThreadTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HookThreadTimeoutError';
  }
}

export interface HookThreadPoolOptions {
  /**
   * How long one call may hold a thread before the thread is stopped and replaced. Well above the
   * request timeout: no call that can still be answered runs that long (FHIR queries have their
   * own, shorter deadline), so this only catches a thread that is stuck.
   */
  jobTimeoutMs: number;
}

export type NewHookJob = Omit<HookJob, 'id'>;

interface Job {
  message: HookJob;
  /** A job whose thread died is given to another thread once. */
  retried: boolean;
  resolve: (reply: HookReply) => void;
  reject: (err: Error) => void;
  /** The watchdog of the thread it is on. */
  timer?: NodeJS.Timeout;
}

interface Thread {
  worker: Worker;
  jobs: Map<number, Job>;
}

const ENTRY = new URL('./thread.ts', import.meta.url);
const FIRST_RESTART_DELAY_MS = 100;
const MAX_RESTART_DELAY_MS = 10_000;

/** Starts one hook thread and waits until its pipeline is built (policies loaded and compiled). */
function startThread(data: HookThreadData): Promise<Worker> {
  const worker = startTsWorker(ENTRY, { workerData: data, name: 'hook-thread' });
  return new Promise((resolve, reject) => {
    const onExit = (code: number) => reject(new Error(`hook thread exited during start-up (${code})`));
    const onError = (err: Error) => reject(new Error(`hook thread failed during start-up: ${err.message}`));
    worker.once('exit', onExit);
    worker.once('error', onError);
    worker.once('message', (status: ThreadStatus) => {
      worker.off('exit', onExit);
      worker.off('error', onError);
      if (status.kind === 'ready') {
        resolve(worker);
        return;
      }
      void worker.terminate();
      reject(new Error(`hook thread could not start: ${status.error.message}`));
    });
  });
}

/**
 * Hook threads: each answers hook calls with its own copy of the pipeline, so the service uses
 * more than one core while its own thread keeps HTTP, authentication and the decision log. A
 * job goes to the thread with the fewest jobs. A thread that dies is replaced; its jobs go to
 * another thread once, and when no thread can take a job the caller answers it itself.
 */
export class HookThreadPool {
  readonly size: number;
  readonly #options: HookThreadPoolOptions;
  readonly #data: HookThreadData;
  readonly #logger: Logger;
  readonly #threads: Thread[] = [];
  #nextJobId = 1;
  #restartDelayMs = FIRST_RESTART_DELAY_MS;
  #restarting = 0;
  #closed = false;

  private constructor(size: number, data: HookThreadData, logger: Logger, options: HookThreadPoolOptions) {
    this.size = size;
    this.#options = options;
    this.#data = data;
    this.#logger = logger;
  }

  /** Starts `size` threads; rejects (after stopping the others) if any cannot start. */
  static async start(size: number, data: HookThreadData, logger: Logger, options: HookThreadPoolOptions): Promise<HookThreadPool> {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`hook thread pool size must be a positive integer, got ${size}`);
    const pool = new HookThreadPool(size, data, logger, options);
    const started = await Promise.allSettled(Array.from({ length: size }, () => startThread(data)));
    const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) {
      await Promise.all(started.map((s) => (s.status === 'fulfilled' ? s.value.terminate() : undefined)));
      throw failure.reason as Error;
    }
    for (const s of started) if (s.status === 'fulfilled') pool.#adopt(s.value);
    return pool;
  }

  /** The live threads' workers (for health checks and tests). */
  get workers(): readonly Worker[] {
    return this.#threads.map((t) => t.worker);
  }

  /** Calls a live thread is working on or has queued (0 for a worker not in the pool). */
  jobsOn(worker: Worker): number {
    return this.#threads.find((t) => t.worker === worker)?.jobs.size ?? 0;
  }

  answer(job: NewHookJob): Promise<HookReply> {
    return new Promise((resolve, reject) => {
      this.#dispatch({ message: { ...job, id: this.#nextJobId++ }, retried: false, resolve, reject });
    });
  }

  /** Stops every thread; jobs still running are answered by their callers. */
  async close(): Promise<void> {
    this.#closed = true;
    const threads = this.#threads.splice(0);
    for (const t of threads) this.#orphan(t, 'the hook threads are stopping');
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  #dispatch(job: Job): void {
    let best: Thread | undefined;
    for (const t of this.#threads) if (!best || t.jobs.size < best.jobs.size) best = t;
    if (!best || this.#closed) {
      job.reject(new HookThreadsUnavailableError('no hook thread is running'));
      return;
    }
    const thread = best;
    thread.jobs.set(job.message.id, job);
    job.timer = setTimeout(() => this.#stuck(thread, job), this.#options.jobTimeoutMs);
    job.timer.unref();
    thread.worker.postMessage(job.message);
  }

  #stuck(thread: Thread, job: Job): void {
    if (!thread.jobs.delete(job.message.id)) return;
    this.#logger.error({ ms: this.#options.jobTimeoutMs, threadId: thread.worker.threadId }, 'a hook call held its thread too long; the thread is replaced');
    job.reject(new HookThreadTimeoutError(`the hook call took longer than ${this.#options.jobTimeoutMs} ms`));
    // Its other jobs run again elsewhere when the exit is seen (#lost).
    void thread.worker.terminate();
  }

  #adopt(worker: Worker): void {
    const thread: Thread = { worker, jobs: new Map() };
    this.#threads.push(thread);
    worker.on('message', (reply: HookReply) => {
      const job = thread.jobs.get(reply.id);
      if (!job) return;
      thread.jobs.delete(reply.id);
      clearTimeout(job.timer);
      job.resolve(reply);
    });
    worker.on('error', (err) => {
      this.#logger.error({ err: { name: err.name, message: err.message } }, 'hook thread failed');
    });
    worker.once('exit', (code) => this.#lost(thread, code));
  }

  #lost(thread: Thread, code: number): void {
    const index = this.#threads.indexOf(thread);
    if (index < 0) return;
    this.#threads.splice(index, 1);
    this.#logger.error({ code, jobs: thread.jobs.size }, 'hook thread exited; starting another');
    // Answering is free of side effects until the reply is recorded, so a job can simply run again.
    for (const job of thread.jobs.values()) {
      clearTimeout(job.timer);
      if (job.retried) {
        job.reject(new HookThreadsUnavailableError('the hook thread running this call exited twice'));
      } else {
        job.retried = true;
        this.#dispatch(job);
      }
    }
    thread.jobs.clear();
    this.#restart();
  }

  #orphan(thread: Thread, why: string): void {
    for (const job of thread.jobs.values()) {
      clearTimeout(job.timer);
      job.reject(new HookThreadsUnavailableError(why));
    }
    thread.jobs.clear();
  }

  #restart(): void {
    if (this.#closed || this.#threads.length + this.#restarting >= this.size) return;
    this.#restarting++;
    const delay = this.#restartDelayMs;
    setTimeout(() => {
      startThread(this.#data).then(
        (worker) => {
          this.#restarting--;
          if (this.#closed) {
            void worker.terminate();
            return;
          }
          this.#restartDelayMs = FIRST_RESTART_DELAY_MS;
          this.#adopt(worker);
          this.#logger.info({ threads: this.#threads.length }, 'hook thread started again');
        },
        (err: Error) => {
          this.#restarting--;
          this.#restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, this.#restartDelayMs * 2);
          this.#logger.error({ err: { name: err.name, message: err.message } }, 'hook thread could not be started again');
          this.#restart();
        },
      );
    }, delay).unref();
  }
}
