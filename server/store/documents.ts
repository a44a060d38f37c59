import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';

/** Where one decision's documents are: a byte range of a segment file. */
export interface DocumentRef {
  segment: string;
  offset: number;
  length: number;
}

/** One decision's documents as JSON text (see PreparedDecision). */
export interface DocumentTexts {
  id: string;
  evidence: string | null;
  response: string;
  criteria: (string | null)[];
}

/** The documents as read back. */
export interface StoredDocuments {
  evidence: unknown;
  response: unknown;
  criteria: unknown[];
}

const SEGMENT_PATTERN = /^decisions-(\d{4}-\d{2}-\d{2})\.jsonl$/;

function segmentName(day: string): string {
  return `decisions-${day}.jsonl`;
}

/** The UTC day a segment holds documents written on, from its name. */
function segmentDay(segment: string): string | undefined {
  return SEGMENT_PATTERN.exec(segment)?.[1];
}

/**
 * The decision log's large documents (evidence, response, criteria) for the embedded engine:
 * append-only JSON-lines files, one per UTC day of writing, beside PGlite's directory. The
 * decision's row keeps the file and byte range.
 *
 * Why: writing ~20 KB of documents per decision through PGlite (WebAssembly PostgreSQL: protocol
 * copies, TOAST chunks, WAL) was about half of the log's CPU, and on a small machine that CPU is
 * taken from the service. Appending the same bytes to a file costs one write(2) per batch.
 *
 * Durability matches PGlite's own files: a write is in the kernel when `append` returns (it
 * survives SIGKILL, not power loss), and documents are always written before the row that points
 * at them is committed. A crash between the two leaves unreferenced bytes, never a dangling row.
 * One process writes (the data directory is locked), from PGlite's worker thread: the encoding and
 * the write(2) (~0.1 ms for 20 KB on a small VM) stay off the service's thread. The service's
 * thread reads and purges.
 */
export class DocumentSegments {
  /** `<dataDir>/documents` */
  readonly dir: string;
  #day: string | undefined;
  #fd: number | undefined;
  #size = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  /**
   * Appends one line per decision, `{"id":…,"evidence":…,"response":…,"criteria":[…]}`, built
   * around the texts as they are (so the response is kept byte for byte as sent), and returns
   * where each line is. Synchronous: the bytes are in the kernel when this returns.
   */
  append(decisions: DocumentTexts[], now: Date = new Date()): DocumentRef[] {
    const fd = this.#open(now.toISOString().slice(0, 10));
    const segment = segmentName(this.#day ?? '');
    const lines = decisions.map((d) =>
      Buffer.from(`{"id":${JSON.stringify(d.id)},"evidence":${d.evidence ?? 'null'},"response":${d.response},"criteria":[${d.criteria.map((c) => c ?? 'null').join(',')}]}\n`, 'utf8'),
    );
    const refs: DocumentRef[] = [];
    let offset = this.#size;
    for (const line of lines) {
      refs.push({ segment, offset, length: line.length - 1 });
      offset += line.length;
    }
    const bytes = Buffer.concat(lines);
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written, this.#size + written);
    } catch (err) {
      // Part of the batch may be on disk (a full disk): the size kept here is no longer the
      // file's. Reopening measures it again and ends the torn line before the next append.
      this.close();
      throw err;
    }
    this.#size += bytes.length;
    return refs;
  }

  /** Reads one decision's documents back, checking that the line is that decision's. */
  async read(ref: DocumentRef, decisionId: string): Promise<StoredDocuments> {
    if (segmentDay(ref.segment) === undefined) throw new Error(`not a document segment: ${ref.segment}`);
    const handle = await open(path.join(this.dir, ref.segment), 'r');
    try {
      const buffer = Buffer.alloc(ref.length);
      const { bytesRead } = await handle.read(buffer, 0, ref.length, ref.offset);
      if (bytesRead !== ref.length) throw new Error(`${ref.segment} ends before byte ${ref.offset + ref.length}`);
      const line = JSON.parse(buffer.toString('utf8')) as { id?: unknown; evidence?: unknown; response?: unknown; criteria?: unknown };
      if (line.id !== decisionId) throw new Error(`${ref.segment} at byte ${ref.offset} holds another decision's documents`);
      return { evidence: line.evidence ?? null, response: line.response ?? null, criteria: Array.isArray(line.criteria) ? line.criteria : [] };
    } finally {
      await handle.close();
    }
  }

  /**
   * Deletes the segments written before `day` (UTC, YYYY-MM-DD) for which `stillReferenced`
   * (given the segment's name and day) says no decision points into them any more. Returns the names deleted. Segments of today and
   * yesterday are never deleted: the writer (another thread) may still be appending to them.
   */
  async purgeBefore(day: string, stillReferenced: (segment: string, day: string) => Promise<boolean>, now: Date = new Date()): Promise<string[]> {
    const yesterday = new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10);
    const before = day < yesterday ? day : yesterday;
    const deleted: string[] = [];
    for (const name of (await readdir(this.dir)).sort()) {
      const segmentOf = segmentDay(name);
      if (segmentOf === undefined || segmentOf >= before) continue;
      if (await stillReferenced(name, segmentOf)) continue;
      await unlink(path.join(this.dir, name));
      deleted.push(name);
    }
    return deleted;
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
    this.#day = undefined;
  }

  /** The segment of `day`, opened for appending; a torn last line (a crash mid-write) is ended first. */
  #open(day: string): number {
    if (this.#fd !== undefined && this.#day === day) return this.#fd;
    this.close();
    const fd = openSync(path.join(this.dir, segmentName(day)), 'a+', 0o600);
    let size = fstatSync(fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      readSync(fd, last, 0, 1, size - 1);
      if (last[0] !== 0x0a) size += writeSync(fd, '\n', size);
    }
    this.#fd = fd;
    this.#day = day;
    this.#size = size;
    return fd;
  }
}
