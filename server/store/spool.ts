import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../logger.ts';
import { Batcher } from './batcher.ts';
import type { DecisionRecord } from './types.ts';

const CURRENT = 'decisions.jsonl';
const REPLAY_PATTERN = /^decisions\.\d+-\d+\.replay\.jsonl$/;
const QUARANTINE = 'rejected.jsonl';

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function appendDurably(file: string, text: string): Promise<void> {
  const handle = await open(file, 'a');
  try {
    await handle.appendFile(text, 'utf8');
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

async function countLines(file: string): Promise<number> {
  let n = 0;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) if (line.trim() !== '') n++;
  return n;
}

/**
 * A local append-only file of decision records that could not be committed in time. A record is
 * acknowledged only after its line is fsynced. For replay the current file is first renamed
 * aside (new records go to a fresh file), replayed, then deleted, so appends never race a reader
 * and a torn last line (a write cut by a crash, never acknowledged) cannot glue onto the next one.
 */
export class Spool {
  readonly dir: string;
  readonly file: string;
  readonly #logger: Logger;
  #current = 0;
  #currentDurable = false;
  #pendingByFile = new Map<string, number>();
  #seq = 0;
  #lock: Promise<unknown> = Promise.resolve();
  readonly #writer: Batcher<string>;

  constructor(dataDir: string, logger: Logger) {
    this.dir = path.join(dataDir, 'spool');
    this.file = path.join(this.dir, CURRENT);
    this.#logger = logger;
    this.#writer = new Batcher<string>((entries) => this.#write(entries.map((e) => e.item)).then(() => entries.forEach((e) => e.resolve())), {
      maxBatch: 1000,
      concurrency: 1,
    });
  }

  /** Records acknowledged from the spool and not yet replayed. */
  get pending(): number {
    let n = this.#current;
    for (const count of this.#pendingByFile.values()) n += count;
    return n;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const name of (await readdir(this.dir)).filter((f) => REPLAY_PATTERN.test(f))) {
      this.#pendingByFile.set(name, await countLines(path.join(this.dir, name)));
    }
    // A file left by a previous run may end in a torn line: set it aside before appending.
    const size = await stat(this.file).then((s) => s.size, () => 0);
    if (size > 0) {
      this.#current = await countLines(this.file);
      await this.#rotate();
    }
  }

  /**
   * Appends records, each given as the JSON text of a DecisionRecord on one line (one fsync for
   * everything queued together); resolves once durable.
   */
  append(lines: string[]): Promise<void> {
    return Promise.all(lines.map((line) => this.#writer.submit(`${line}\n`).promise)).then(() => undefined);
  }

  idle(): Promise<void> {
    return this.#writer.idle();
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => undefined);
    return run;
  }

  #write(lines: string[]): Promise<void> {
    return this.#exclusive(async () => {
      try {
        await appendDurably(this.file, lines.join(''));
        if (!this.#currentDurable) {
          await fsyncDir(this.dir); // the new file's directory entry must survive too
          this.#currentDurable = true;
        }
        this.#current += lines.length;
      } catch (err) {
        // Part of the text may be on disk: move it aside so the next append starts a clean line.
        await this.#rotate().catch(() => undefined);
        throw err;
      }
    });
  }

  /** Caller holds the lock (or nothing else runs yet). */
  async #rotate(): Promise<void> {
    const size = await stat(this.file).then((s) => s.size, () => 0);
    if (size === 0) return;
    const name = `decisions.${Date.now()}-${this.#seq++}.replay.jsonl`;
    await rename(this.file, path.join(this.dir, name));
    await fsyncDir(this.dir);
    this.#pendingByFile.set(name, this.#current);
    this.#current = 0;
    this.#currentDurable = false;
  }

  /** Appends records that can never be stored to rejected.jsonl for a person to look at. */
  async quarantine(lines: string[], reason: string): Promise<void> {
    if (lines.length === 0) return;
    this.#logger.error({ count: lines.length, reason }, 'decision store: spooled records rejected by the database, kept in spool/rejected.jsonl');
    await appendDurably(path.join(this.dir, QUARANTINE), lines.map((l) => `${l.trim()}\n`).join(''));
  }

  /**
   * Feeds every spooled record to `store`, oldest first, in batches. A file is deleted once all
   * its records are stored; if `store` throws, replay stops and resumes from that file next time
   * (storing is idempotent on record id).
   */
  async replay(store: (records: DecisionRecord[], lines: string[]) => Promise<void>, batchSize = 200): Promise<number> {
    await this.#exclusive(() => this.#rotate());
    const files = [...this.#pendingByFile.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    let replayed = 0;
    for (const name of files) {
      const full = path.join(this.dir, name);
      const total = this.#pendingByFile.get(name) ?? 0;
      let done = 0;
      let records: DecisionRecord[] = [];
      let lines: string[] = [];
      const unreadable: string[] = [];
      const flush = async (): Promise<void> => {
        if (records.length === 0) return;
        await store(records, lines);
        done += records.length;
        replayed += records.length;
        this.#pendingByFile.set(name, Math.max(0, total - done));
        records = [];
        lines = [];
      };
      const input = createInterface({ input: createReadStream(full, 'utf8'), crlfDelay: Infinity });
      try {
        for await (const line of input) {
          if (line.trim() === '') continue;
          try {
            records.push(JSON.parse(line) as DecisionRecord);
            lines.push(line);
          } catch {
            unreadable.push(line); // a torn tail from a crash mid-append: never acknowledged
          }
          if (records.length >= batchSize) await flush();
        }
        await flush();
      } finally {
        input.close();
      }
      if (unreadable.length > 0) await this.quarantine(unreadable, 'unreadable spool line');
      await unlink(full);
      await fsyncDir(this.dir);
      this.#pendingByFile.delete(name);
    }
    return replayed;
  }
}
