import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * CPU accounting around a measured run: the server child's CPU time (from /proc, Linux only),
 * this process's (the load generator), and the whole machine's. What the machine spent beyond
 * those two is other work, which distorts req/s and latency; the server's CPU time per request
 * is a figure that such contention changes much less.
 */

/** Linux USER_HZ; /proc/<pid>/stat counts in these ticks. */
const TICKS_PER_SECOND = 100;

/** CPU time of a process (all threads), or of one thread with `/proc/<pid>/task/<tid>/stat`. */
function processCpuMs(pid: number, statPath = `/proc/${pid}/stat`): number | undefined {
  try {
    const stat = readFileSync(statPath, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return ((utime + stime) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

function machineBusyMs(): number {
  let busy = 0;
  for (const cpu of os.cpus()) busy += cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq;
  return busy;
}

export interface CpuUse {
  /** Server child CPU, ms (undefined where /proc is unavailable). */
  serverMs: number | undefined;
  /**
   * The server's main thread alone (its event loop, where every request is handled), ms. Worker
   * threads such as an embedded database's are not in it: on a machine with a core to spare for
   * them, this is what bounds the server's throughput.
   */
  serverMainThreadMs: number | undefined;
  clientMs: number;
  /** Share of the machine's CPU capacity used by anything else during the run, %. */
  otherPercent: number | undefined;
}

export function startCpuMeter(serverPid: number | undefined): () => CpuUse {
  const wallStart = performance.now();
  const serverStart = serverPid !== undefined ? processCpuMs(serverPid) : undefined;
  const mainThread = serverPid !== undefined ? `/proc/${serverPid}/task/${serverPid}/stat` : undefined;
  const mainStart = serverPid !== undefined ? processCpuMs(serverPid, mainThread) : undefined;
  const clientStart = process.cpuUsage();
  const machineStart = machineBusyMs();
  return () => {
    const wallMs = performance.now() - wallStart;
    const serverEnd = serverPid !== undefined ? processCpuMs(serverPid) : undefined;
    const mainEnd = serverPid !== undefined ? processCpuMs(serverPid, mainThread) : undefined;
    const client = process.cpuUsage(clientStart);
    const clientMs = (client.user + client.system) / 1000;
    const serverMs = serverStart !== undefined && serverEnd !== undefined ? serverEnd - serverStart : undefined;
    const machineMs = machineBusyMs() - machineStart;
    const capacity = wallMs * os.cpus().length;
    const otherPercent = serverMs !== undefined && capacity > 0 ? Math.max(0, (100 * (machineMs - serverMs - clientMs)) / capacity) : undefined;
    const serverMainThreadMs = mainStart !== undefined && mainEnd !== undefined ? mainEnd - mainStart : undefined;
    return { serverMs, serverMainThreadMs, clientMs, otherPercent };
  };
}

/**
 * Waits (up to maxWaitMs) until the machine is quiet — less than `thresholdPercent` of its CPU
 * busy over a one-second sample — and returns the last sample's busy %. Call it while the target
 * is idle, between scenarios.
 */
export async function waitForQuiet(maxWaitMs: number, thresholdPercent: number): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  let busyPercent = 100;
  do {
    const machineStart = machineBusyMs();
    const wallStart = performance.now();
    await new Promise<void>((resolve) => setTimeout(resolve, 1000));
    busyPercent = (100 * (machineBusyMs() - machineStart)) / ((performance.now() - wallStart) * os.cpus().length);
    if (busyPercent < thresholdPercent) return busyPercent;
  } while (Date.now() < deadline);
  return busyPercent;
}
