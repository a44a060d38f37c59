import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Summarises V8 .cpuprofile files written by `node --cpu-prof`: the functions with the most
 * samples of their own (self) and the most samples under them (total), as % of busy (non-idle)
 * samples; garbage collection and (program) count as busy.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
}

export interface HotSpot {
  name: string;
  where: string;
  percent: number;
}

export interface ProfileSummary {
  file: string;
  busySamples: number;
  idlePercent: number;
  self: HotSpot[];
  total: HotSpot[];
  /** Total time of the project's own functions (not node_modules, not node:). */
  projectTotal: HotSpot[];
  byArea: HotSpot[];
}

const IDLE = new Set(['(idle)']);

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Decodes one source-map "mappings" segment (base64 VLQ) into its numbers. */
function decodeSegment(segment: string): number[] {
  const out: number[] = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = BASE64.indexOf(ch);
    if (digit < 0) return out;
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
    } else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return out;
}

/** [generated column, original line] pairs per generated line, ascending by column. */
type LineMap = Array<Array<[number, number]>>;

function parseMappings(mappings: string): LineMap {
  const lines: LineMap = [];
  let sourceLine = 0;
  for (const line of mappings.split(';')) {
    const entries: Array<[number, number]> = [];
    let column = 0;
    for (const segment of line.split(',')) {
      if (!segment) continue;
      const fields = decodeSegment(segment);
      column += fields[0] ?? 0;
      if (fields.length >= 4) {
        sourceLine += fields[2] ?? 0;
        entries.push([column, sourceLine]);
      }
    }
    lines.push(entries);
  }
  return lines;
}

/**
 * tsx compiles each .ts module to one minified line, so profile positions are columns of that
 * line. With the compiled sources captured by capture-sources.ts, their inline source maps give
 * back the .ts line of each function.
 */
export class SourceLines {
  private readonly maps = new Map<string, LineMap | null>();

  constructor(private readonly dir: string | undefined) {}

  /** 1-based line in the original file, or undefined when unknown. */
  originalLine(url: string, line: number, column: number): number | undefined {
    const map = this.mapFor(url);
    const entries = map?.[line];
    if (!entries || entries.length === 0) return undefined;
    // Last entry whose column is <= column (binary search; entries ascend by column).
    let lo = 0;
    let hi = entries.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const entry = entries[mid];
      if (entry && entry[0] <= column) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return (entries[found]?.[1] ?? 0) + 1;
  }

  private mapFor(url: string): LineMap | null {
    const cached = this.maps.get(url);
    if (cached !== undefined) return cached;
    let map: LineMap | null = null;
    const file = this.dir ? path.join(this.dir, encodeURIComponent(url)) : '';
    if (file && existsSync(file)) {
      const source = readFileSync(file, 'utf8');
      const marker = 'sourceMappingURL=data:application/json;base64,';
      const at = source.lastIndexOf(marker);
      if (at >= 0) {
        const json: unknown = JSON.parse(Buffer.from(source.slice(at + marker.length).trim(), 'base64').toString('utf8'));
        const mappings = (json as { mappings?: unknown }).mappings;
        if (typeof mappings === 'string') map = parseMappings(mappings);
      }
    }
    this.maps.set(url, map);
    return map;
  }
}

function isCpuProfile(value: unknown): value is CpuProfile {
  return typeof value === 'object' && value !== null && Array.isArray((value as { nodes?: unknown }).nodes);
}

function location(frame: CallFrame, root: string, sources: SourceLines): string {
  if (!frame.url) return '';
  const file = frame.url.startsWith('file://') ? new URL(frame.url).pathname : frame.url;
  const rel = path.isAbsolute(file) ? path.relative(root, file) : file;
  const line = frame.url.endsWith('.ts') ? sources.originalLine(frame.url, frame.lineNumber, frame.columnNumber) : frame.lineNumber + 1;
  return line === undefined ? `${rel}, col ${frame.columnNumber + 1} of the compiled line` : `${rel}:${line}`;
}

/** "express", "@medplum/core", "server/gather", "node:internal" … */
function area(frame: CallFrame, root: string): string {
  if (IDLE.has(frame.functionName)) return frame.functionName;
  if (!frame.url) return '(native)';
  if (frame.url.startsWith('node:')) return 'node:' + (frame.url.slice(5).split('/')[0] ?? '');
  const file = frame.url.startsWith('file://') ? new URL(frame.url).pathname : frame.url;
  const rel = path.relative(root, file);
  const parts = rel.split(path.sep);
  const nm = parts.lastIndexOf('node_modules');
  if (nm >= 0) {
    const first = parts[nm + 1] ?? '';
    return first.startsWith('@') ? `${first}/${parts[nm + 2] ?? ''}` : first;
  }
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : rel;
}

function top(map: Map<string, { name: string; where: string; samples: number }>, busy: number, n: number): HotSpot[] {
  return [...map.values()]
    .sort((a, b) => b.samples - a.samples)
    .slice(0, n)
    .map((e) => ({ name: e.name, where: e.where, percent: busy > 0 ? (100 * e.samples) / busy : 0 }));
}

function isProject(where: string): boolean {
  return where !== '' && !where.startsWith('..') && !where.startsWith('node:') && !where.includes('node_modules') && !where.startsWith('/') && !where.startsWith('wasm:');
}

export function summariseProfile(file: string, root: string, sources: SourceLines, n = 15): ProfileSummary {
  const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
  if (!isCpuProfile(parsed)) throw new Error(`${file} is not a V8 CPU profile`);
  const byId = new Map(parsed.nodes.map((node) => [node.id, node]));
  const named = new Map<number, { name: string; where: string; key: string }>();
  const describe = (node: ProfileNode) => {
    let d = named.get(node.id);
    if (!d) {
      const name = node.callFrame.functionName || '(anonymous)';
      const where = location(node.callFrame, root, sources);
      d = { name, where, key: `${name}@${where}` };
      named.set(node.id, d);
    }
    return d;
  };
  const parents = new Map<number, number>();
  for (const node of parsed.nodes) for (const child of node.children ?? []) parents.set(child, node.id);

  let all = 0;
  let idle = 0;
  const self = new Map<string, { name: string; where: string; samples: number }>();
  const areas = new Map<string, { name: string; where: string; samples: number }>();
  const total = new Map<string, { name: string; where: string; samples: number }>();

  for (const node of parsed.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0) continue;
    all += hits;
    const frame = node.callFrame;
    if (IDLE.has(frame.functionName)) {
      idle += hits;
      continue;
    }
    const { name, where, key } = describe(node);
    const s = self.get(key) ?? { name, where, samples: 0 };
    s.samples += hits;
    self.set(key, s);
    const a = area(frame, root);
    const ar = areas.get(a) ?? { name: a, where: '', samples: 0 };
    ar.samples += hits;
    areas.set(a, ar);
    // Total: credit every distinct function on this node's stack once.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parents.get(id)) {
      const ancestor = byId.get(id);
      if (!ancestor || ancestor.callFrame.functionName === '(root)') continue;
      const { name: fname, where: fwhere, key: fkey } = describe(ancestor);
      if (seen.has(fkey)) continue;
      seen.add(fkey);
      const t = total.get(fkey) ?? { name: fname, where: fwhere, samples: 0 };
      t.samples += hits;
      total.set(fkey, t);
    }
  }
  const busy = all - idle;
  return {
    file,
    busySamples: busy,
    idlePercent: all > 0 ? (100 * idle) / all : 0,
    self: top(self, busy, n),
    total: top(total, busy, n),
    projectTotal: top(new Map([...total].filter(([, v]) => isProject(v.where))), busy, n),
    byArea: top(areas, busy, n),
  };
}

export function profilesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => path.join(dir, f));
  } catch {
    return [];
  }
}

export function formatProfile(summary: ProfileSummary): string {
  const line = (h: HotSpot) => `    ${h.percent.toFixed(1).padStart(5)} %  ${h.name}${h.where ? `  (${h.where})` : ''}`;
  return [
    `  ${summary.file}`,
    `  busy samples: ${summary.busySamples} (idle excluded: ${summary.idlePercent.toFixed(1)} % of all samples)`,
    '  self time, % of busy samples:',
    ...summary.self.map(line),
    '  total time (function and its callees), % of busy samples:',
    ...summary.total.map(line),
    '  total time of project functions (server/, policies/, cards/), % of busy samples:',
    ...summary.projectTotal.map(line),
    '  self time by area:',
    ...summary.byArea.map(line),
  ].join('\n');
}
