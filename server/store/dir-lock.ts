import { open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';

const heldHere = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function tryCreate(file: string): Promise<boolean> {
  try {
    const handle = await open(file, 'wx');
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * One process at a time owns a dataDir: PGlite is a single-process database and the spool has
 * one writer. A lock left by a killed process (its pid is gone, or is our own pid from an
 * earlier life in a container) is taken over. Returns the release function.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, 'store.lock');
  if (heldHere.has(file)) throw new Error(`decision store: ${dataDir} is already open in this process`);
  // Claimed before the first await: two opens racing in one process must not both see the file
  // as "left by our own earlier life" and take it over.
  heldHere.add(file);
  try {
    if (!(await tryCreate(file))) {
      const pid = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new Error(`decision store: ${dataDir} is in use by process ${pid} (give each instance its own CDS_DATA_DIR)`);
      }
      await unlink(file).catch(() => undefined);
      if (!(await tryCreate(file))) throw new Error(`decision store: could not lock ${dataDir}`);
    }
  } catch (error) {
    heldHere.delete(file);
    throw error;
  }
  return async () => {
    heldHere.delete(file);
    await unlink(file).catch(() => undefined);
  };
}
