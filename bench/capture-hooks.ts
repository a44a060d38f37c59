import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Module hooks for capture-sources.ts (they run on the loader thread). */
interface InitData {
  dir: string;
}

interface LoadResult {
  format?: string;
  source?: string | ArrayBuffer | Uint8Array | null;
  shortCircuit?: boolean;
}

type NextLoad = (url: string, context: unknown) => Promise<LoadResult>;

let dir: string | undefined;

export function initialize(data: InitData): void {
  dir = data.dir;
  mkdirSync(dir, { recursive: true });
}

export async function load(url: string, context: unknown, nextLoad: NextLoad): Promise<LoadResult> {
  const result = await nextLoad(url, context);
  if (dir && url.startsWith('file:') && url.endsWith('.ts') && !url.includes('/node_modules/') && result.source) {
    const source = typeof result.source === 'string' ? result.source : Buffer.from(result.source instanceof ArrayBuffer ? new Uint8Array(result.source) : result.source).toString('utf8');
    writeFileSync(path.join(dir, encodeURIComponent(url)), source);
  }
  return result;
}
