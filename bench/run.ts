/**
 * `npm run bench`: load against the running service with a realistic full-prefetch Zolgensma
 * order-sign, beside a bare Express route that parses the same body (the floor), in one run.
 *
 * Each target (the bare app, the service in a given configuration) is a child process started
 * here on a free port, warmed up, measured, and stopped; the load generator runs in this process,
 * so client and server use separate cores. Options:
 *
 *   --quick                 3 s per scenario, 1 s warm-up (smoke run)
 *   --seconds=N             BENCH_SECONDS, default 10
 *   --connections=N         BENCH_CONNECTIONS, default 16 (max-throughput runs)
 *   --rate=N                BENCH_RATE, default 500 (fixed-rate runs, req/s; the p99 target applies here)
 *   --light-rate=N          BENCH_LIGHT_RATE, default 100: a second fixed-rate run of the default config, for
 *                           latency below saturation (0: skip)
 *   --warmup=N              BENCH_WARMUP, default 3 (seconds)
 *   --profile               BENCH_PROFILE=1: --cpu-prof on the service children, hot spots printed
 *   --no-info-log           BENCH_INFO_LOG=0: skip the LOG_LEVEL=info run
 *   --only=TEXT             BENCH_ONLY: run only the scenarios whose label contains TEXT
 *   --paired                the ratios only, measured robustly: the floor, the service and the service
 *                           without its decision log (and on PostgreSQL unless BENCH_POSTGRES=off) run side by
 *                           side and are measured in alternating rounds (BENCH_ROUNDS, default 5, of --seconds,
 *                           default 5 here, at 16 and at 64 connections); each ratio is the median of the
 *                           per-round ratios, so a slow phase of the shared machine hits both sides of a ratio;
 *                           BENCH_EXTRA targets join the rounds, and --only keeps the floor, the default config
 *                           and the targets whose label contains TEXT
 *   --json=FILE             also write the results as JSON
 *   --strict                BENCH_STRICT=1: exit 1 when a target is missed (always: when a run got non-2xx)
 *   BENCH_QUIET_WAIT=S      before each scenario wait up to S seconds (default 60, 0: never) for the
 *                           machine to be quiet (< 15 % busy); on a shared machine other work distorts everything
 *   BENCH_ATTEMPTS=N        repeat a scenario disturbed by other load (> 10 % of the machine) up to N
 *                           times in all (default 3) and keep the least disturbed attempt
 *   BENCH_EXTRA='[{"label":"service (store on PostgreSQL)","env":{"DATABASE_URL":"postgres://…"}}]'
 *                           more service configurations, each measured at max throughput and at the fixed rate
 */
import autocannon from 'autocannon';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { benchBody, HOOK_INSTANCE_PLACEHOLDER, plainBody } from './body.ts';
import { runPaced } from './paced.ts';
import { startCpuMeter, waitForQuiet, type CpuUse } from './cpu.ts';
import { formatProfile, profilesIn, SourceLines, summariseProfile } from './profile.ts';
import { LatencyRecorder, percentile, type Measured } from './stats.ts';
import { defaultHookThreads } from '../server/config.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const SATURATING_CONNECTIONS = 64;
const HOST = '127.0.0.1';
const COVERAGE_INFORMATION_URL = 'http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information';
const TARGET_RATIO = 0.5;
const TARGET_P99_MS = 10;
/** Issue 5: writing the decision log may cost at most 20 % of throughput. */
const TARGET_STORE_RATIO = 0.8;

type Hook = 'order-sign' | 'order-select';

/**
 * The service with the other hook-thread setting than its default on this machine: without hook
 * threads where it has them, with one where it has none (two cores), to show what they change.
 */
function threadsAlternative(): Target {
  return defaultHookThreads() > 0
    ? { kind: 'service', label: 'service (hook threads off)', env: { HOOK_THREADS: '0' }, stdout: 'pipe' }
    : { kind: 'service', label: 'service (one hook thread)', env: { HOOK_THREADS: '1' }, stdout: 'pipe' };
}

// ---------------------------------------------------------------- options

interface Options {
  seconds: number;
  warmup: number;
  connections: number;
  rate: number;
  lightRate: number;
  profile: boolean;
  infoLog: boolean;
  json: string | undefined;
  only: string | undefined;
  /** Exit 1 when a target is missed, not only when the run is invalid. */
  strict: boolean;
  quietWaitSeconds: number;
  attempts: number;
  quick: boolean;
}

function argValue(name: string): string | undefined {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === `--${name}`) return args[i + 1] ?? '';
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return undefined;
}

function hasFlag(name: string): boolean {
  return process.argv.slice(2).includes(`--${name}`);
}

function positive(label: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${label} must be a positive number, got "${raw}"`);
  return value;
}

function readOptions(): Options {
  const quick = hasFlag('quick');
  return {
    quick,
    seconds: positive('--seconds/BENCH_SECONDS', argValue('seconds') ?? process.env.BENCH_SECONDS, quick ? 3 : 10),
    warmup: positive('--warmup/BENCH_WARMUP', argValue('warmup') ?? process.env.BENCH_WARMUP, quick ? 1 : 3),
    connections: Math.round(positive('--connections/BENCH_CONNECTIONS', argValue('connections') ?? process.env.BENCH_CONNECTIONS, 16)),
    rate: positive('--rate/BENCH_RATE', argValue('rate') ?? process.env.BENCH_RATE, 500),
    lightRate: (argValue('light-rate') ?? process.env.BENCH_LIGHT_RATE) === '0' ? 0 : positive('--light-rate/BENCH_LIGHT_RATE', argValue('light-rate') ?? process.env.BENCH_LIGHT_RATE, 100),
    profile: hasFlag('profile') || process.env.BENCH_PROFILE === '1',
    infoLog: !hasFlag('no-info-log') && process.env.BENCH_INFO_LOG !== '0',
    json: argValue('json') || undefined,
    only: (argValue('only') ?? process.env.BENCH_ONLY) || undefined,
    strict: hasFlag('strict') || process.env.BENCH_STRICT === '1',
    quietWaitSeconds: process.env.BENCH_QUIET_WAIT === '0' ? 0 : positive('BENCH_QUIET_WAIT', process.env.BENCH_QUIET_WAIT, 60),
    attempts: Math.round(positive('BENCH_ATTEMPTS', process.env.BENCH_ATTEMPTS, 3)),
  };
}

// ---------------------------------------------------------------- scenarios

/** A process to measure: the bare floor or the service with extra environment. */
interface Target {
  kind: 'bare' | 'service';
  label: string;
  env: Record<string, string>;
  /** Where the child's stdout (its JSON log) goes. */
  stdout: 'pipe' | 'devnull';
}

type Load = { kind: 'max'; connections?: number } | { kind: 'paced'; rate: number } | { kind: 'autocannon-rate'; rate: number };

type Role = 'floor' | 'throughput' | 'latency' | 'store-off' | 'store-off-latency' | 'info' | 'store-postgres' | 'store-on-saturated' | 'store-off-saturated' | 'store-postgres-saturated';

interface Scenario {
  label: string;
  target: Target;
  hook: Hook;
  load: Load;
  role?: Role;
}

interface ExtraTarget {
  label: string;
  env: Record<string, string>;
}

function isExtraTarget(value: unknown): value is ExtraTarget {
  if (typeof value !== 'object' || value === null) return false;
  const { label, env } = value as { label?: unknown; env?: unknown };
  return (
    typeof label === 'string' &&
    typeof env === 'object' &&
    env !== null &&
    Object.values(env).every((v) => typeof v === 'string')
  );
}

/** BENCH_EXTRA's service configurations, as targets. */
function extraTargets(): Target[] {
  const raw = process.env.BENCH_EXTRA;
  if (!raw) return [];
  const parsed: unknown = JSON.parse(raw);
  if (!Array.isArray(parsed) || !parsed.every(isExtraTarget)) {
    throw new Error('BENCH_EXTRA must be a JSON array of {"label": string, "env": {NAME: string}}');
  }
  return parsed.map((extra) => ({ kind: 'service', label: extra.label, env: extra.env, stdout: 'pipe' }));
}

function scenarios(options: Options, postgresUrl: string | undefined): Scenario[] {
  const bare: Target = { kind: 'bare', label: 'bare Express floor', env: {}, stdout: 'pipe' };
  const service: Target = { kind: 'service', label: 'service (default config)', env: {}, stdout: 'pipe' };
  const logOff: Target = { kind: 'service', label: 'service (decision log off)', env: { DECISION_LOG: 'off' }, stdout: 'pipe' };
  const threadsOther = threadsAlternative();
  const info: Target = { kind: 'service', label: 'service (default config, LOG_LEVEL=info to /dev/null)', env: { LOG_LEVEL: 'info' }, stdout: 'devnull' };
  const r = options.rate;
  const list: Scenario[] = [
    { label: 'bare Express floor, max', target: bare, hook: 'order-sign', load: { kind: 'max' }, role: 'floor' },
    // What the machine allows for the latency target: the floor itself at the same fixed rate.
    { label: `bare Express floor, ${r}/s paced`, target: bare, hook: 'order-sign', load: { kind: 'paced', rate: r } },
    { label: 'service (default config), max', target: service, hook: 'order-sign', load: { kind: 'max' }, role: 'throughput' },
    { label: `service (default config), ${r}/s paced`, target: service, hook: 'order-sign', load: { kind: 'paced', rate: r }, role: 'latency' },
    { label: `service (default config), ${r}/s autocannon overallRate`, target: service, hook: 'order-sign', load: { kind: 'autocannon-rate', rate: r } },
    ...(options.lightRate > 0
      ? [{ label: `service (default config), ${options.lightRate}/s paced`, target: service, hook: 'order-sign' as const, load: { kind: 'paced' as const, rate: options.lightRate } }]
      : []),
    { label: 'service (default config), order-select, max', target: service, hook: 'order-select', load: { kind: 'max' } },
    { label: 'service (decision log off), max', target: logOff, hook: 'order-sign', load: { kind: 'max' }, role: 'store-off' },
    { label: `${threadsOther.label}, max`, target: threadsOther, hook: 'order-sign', load: { kind: 'max' } },
    // The decision log's cost at saturation: with few closed-loop connections each one waits for
    // its commit, so the client, not the service, sets the pace; more in flight lets group commit
    // batch. Judged here; the 16-connection rows above show the latency-bound case.
    { label: `service (default config), max, ${SATURATING_CONNECTIONS} connections`, target: service, hook: 'order-sign', load: { kind: 'max', connections: SATURATING_CONNECTIONS }, role: 'store-on-saturated' },
    { label: `service (decision log off), max, ${SATURATING_CONNECTIONS} connections`, target: logOff, hook: 'order-sign', load: { kind: 'max', connections: SATURATING_CONNECTIONS }, role: 'store-off-saturated' },
    { label: `service (decision log off), ${r}/s paced`, target: logOff, hook: 'order-sign', load: { kind: 'paced', rate: r }, role: 'store-off-latency' },
  ];
  if (postgresUrl) {
    // The same service with its decision log on a (throwaway, local) PostgreSQL instead of PGlite.
    const pg: Target = { kind: 'service', label: 'service (decision log on PostgreSQL)', env: { DATABASE_URL: postgresUrl }, stdout: 'pipe' };
    list.push({ label: 'service (decision log on PostgreSQL), max', target: pg, hook: 'order-sign', load: { kind: 'max' }, role: 'store-postgres' });
    list.push({ label: `service (decision log on PostgreSQL), ${r}/s paced`, target: pg, hook: 'order-sign', load: { kind: 'paced', rate: r } });
    list.push({ label: `service (decision log on PostgreSQL), max, ${SATURATING_CONNECTIONS} connections`, target: pg, hook: 'order-sign', load: { kind: 'max', connections: SATURATING_CONNECTIONS }, role: 'store-postgres-saturated' });
  }
  if (options.infoLog) list.push({ label: 'service (LOG_LEVEL=info to /dev/null), max', target: info, hook: 'order-sign', load: { kind: 'max' }, role: 'info' });
  for (const target of extraTargets()) {
    list.push({ label: `${target.label}, max`, target, hook: 'order-sign', load: { kind: 'max' } });
    list.push({ label: `${target.label}, ${r}/s paced`, target, hook: 'order-sign', load: { kind: 'paced', rate: r } });
  }
  const only = options.only;
  return only ? list.filter((s) => s.label.includes(only)) : list;
}

// ---------------------------------------------------------------- PostgreSQL

/**
 * A throwaway local PostgreSQL for the "decision log on PostgreSQL" scenarios, started by the
 * same script the tests use (it installs Debian's postgresql if needed). BENCH_POSTGRES=off skips
 * it; BENCH_DATABASE_URL uses an existing server instead.
 */
function startBenchPostgres(out: (s?: string) => void): { url: string; stop: () => void } | undefined {
  if (process.env.BENCH_POSTGRES === 'off') return undefined;
  if (process.env.BENCH_DATABASE_URL) return { url: process.env.BENCH_DATABASE_URL, stop: () => undefined };
  const script = path.join(ROOT, 'scripts', 'test-postgres.sh');
  const started = spawnSync('bash', [script, 'start'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const url = started.status === 0 ? started.stdout.trim().split('\n').pop() : undefined;
  if (!url) {
    out('PostgreSQL could not be started; the PostgreSQL scenarios are left out');
    return undefined;
  }
  out(`PostgreSQL for the decision-log scenarios: ${url.replace(/\/\/[^@]*@/, '//')}`);
  return { url, stop: () => void spawnSync('bash', [script, 'stop', url], { cwd: ROOT, stdio: 'ignore' }) };
}

// ---------------------------------------------------------------- child processes

interface Running {
  target: Target;
  port: number;
  pid: number | undefined;
  env: Record<string, string>;
  stdoutLines: () => number;
  stop: () => Promise<void>;
}

const children = new Set<ChildProcess>();

function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitForHealth(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`child exited (${child.exitCode ?? child.signalCode}) before /health answered:\n${stderr()}`);
    }
    try {
      const res = await fetch(`http://${HOST}:${port}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`/health did not answer within 60 s:\n${stderr()}`);
}

/**
 * The Node flags `npm start` gives the service (package.json's start script, `node <flags>
 * server/main.ts`): every target is started with them, so the bench measures what `npm start` runs.
 */
function startNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts?: { start?: unknown } };
  const words = typeof pkg.scripts?.start === 'string' ? pkg.scripts.start.trim().split(/\s+/) : [];
  if (words[0] !== 'node' || words.at(-1) !== 'server/main.ts' || !words.includes('tsx')) {
    throw new Error(`package.json's start script is not "node <flags> server/main.ts" with tsx: ${String(pkg.scripts?.start)}`);
  }
  return words.slice(1, -1);
}
const START_NODE_FLAGS = startNodeFlags();

async function startTarget(target: Target, options: Options, profileDir: string | undefined, dataDir: string): Promise<Running> {
  const port = await freePort();
  const script = target.kind === 'bare' ? path.join(ROOT, 'bench', 'bare-server.ts') : path.join(ROOT, 'server', 'main.ts');
  const env: Record<string, string> = {
    PORT: String(port),
    HOST,
    LOG_LEVEL: 'warn',
    CDS_DATA_DIR: dataDir,
    // One load generator is one client address: lift the per-client limit so it never answers 429
    // (the limiter still runs on every request).
    RATE_LIMIT_PER_MINUTE: '1000000000',
    ...target.env,
  };
  const profiling = profileDir !== undefined && target.kind === 'service';
  if (profiling) env.BENCH_SOURCES_DIR = path.join(profileDir, 'sources');
  const args = [
    ...(profiling ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
    // The floor runs with the same Node flags as the service, so the ratio compares code, not tuning.
    ...START_NODE_FLAGS,
    ...(profiling ? ['--import', path.join(ROOT, 'bench', 'capture-sources.ts')] : []),
    script,
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', target.stdout === 'devnull' ? 'ignore' : 'pipe', 'pipe'],
  });
  children.add(child);
  let stderrTail = '';
  let lines = 0;
  let lastLines: string[] = [];
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-4000);
  });
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const split = chunk.split('\n').filter((l) => l.length > 0);
    lines += split.length;
    lastLines = [...lastLines, ...split].slice(-5);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => false), sleep(15_000).then(() => true)]);
      if (killed) child.kill('SIGKILL');
      await exited;
    }
    children.delete(child);
  };
  try {
    await waitForHealth(port, child, () => stderrTail + lastLines.join('\n'));
  } catch (error) {
    await stop();
    throw error;
  }
  return { target, port, pid: child.pid, env, stdoutLines: () => lines, stop };
}

// ---------------------------------------------------------------- requests

interface Bodies {
  /** With HOOK_INSTANCE_PLACEHOLDER for hookInstance. */
  template: Record<Hook, string>;
  bytes: Record<Hook, number>;
}

function servicePath(hook: Hook): string {
  const discovery = JSON.parse(readFileSync(path.join(ROOT, 'cds-services.json'), 'utf8')) as { services: { id: string; hook: string }[] };
  const service = discovery.services.find((s) => s.hook === hook);
  if (!service) throw new Error(`cds-services.json has no ${hook} service`);
  return `/cds-services/${service.id}`;
}

function fresh(template: string): string {
  return template.replace(HOOK_INSTANCE_PLACEHOLDER, randomUUID());
}

interface Extension {
  url?: string;
  extension?: Extension[];
  [key: string]: unknown;
}

interface HookAnswer {
  cards?: { summary?: string }[];
  systemActions?: { type?: string; resource?: { resourceType?: string; id?: string; extension?: Extension[] } }[];
}

/** The coverage-information extensions of an answer, without the per-response assertion id. */
function coverageInformation(answer: HookAnswer): string {
  const found = (answer.systemActions ?? []).map((action) => ({
    order: `${action.resource?.resourceType}/${action.resource?.id}`,
    coverageInformation: (action.resource?.extension ?? [])
      .filter((e) => e.url === COVERAGE_INFORMATION_URL)
      .map((e) => (e.extension ?? []).filter((sub) => sub.url !== 'coverage-assertion-id')),
  }));
  return JSON.stringify(found);
}

async function post(port: number, hook: Hook, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://${HOST}:${port}${servicePath(hook)}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, text: await res.text() };
}

/**
 * Before measuring: one request must get 200 with a coverage-information system action, and the
 * benchmark body (with history) must get the same coverage information as the plain fixture.
 */
async function verifyService(port: number, hook: Hook, bodies: Bodies): Promise<string> {
  const answer = await post(port, hook, fresh(bodies.template[hook]));
  if (answer.status !== 200) throw new Error(`${hook}: the service answered ${answer.status}, not 200; a bench of errors is worthless:\n${answer.text.slice(0, 2000)}`);
  const parsed = JSON.parse(answer.text) as HookAnswer;
  const withInfo = (parsed.systemActions ?? []).filter((a) => (a.resource?.extension ?? []).some((e) => e.url === COVERAGE_INFORMATION_URL));
  if (withInfo.length === 0) throw new Error(`${hook}: 200 but no systemActions with a coverage-information extension:\n${answer.text.slice(0, 2000)}`);
  const plain = await post(port, hook, plainBody(hook));
  if (plain.status !== 200) throw new Error(`${hook}: the plain fixture request got ${plain.status}:\n${plain.text.slice(0, 2000)}`);
  const plainParsed = JSON.parse(plain.text) as HookAnswer;
  if (coverageInformation(parsed) !== coverageInformation(plainParsed)) {
    throw new Error(`${hook}: the history added to the bench body changed the decision:\n  bench: ${coverageInformation(parsed)}\n  plain: ${coverageInformation(plainParsed)}`);
  }
  const covered = withInfo[0]?.resource?.extension?.find((e) => e.url === COVERAGE_INFORMATION_URL)?.extension ?? [];
  const code = (url: string) => covered.filter((e) => e.url === url).map((e) => String(e.valueCode)).join('+') || '-';
  const summary = parsed.cards?.[0]?.summary ?? '(no card)';
  return `${hook}: 200, ${withInfo.length} coverage-information action(s): covered=${code('covered')} pa-needed=${code('pa-needed')} doc-needed=${code('doc-needed')}; card "${summary}"`;
}

async function verifyBare(port: number, bodies: Bodies): Promise<string> {
  const answer = await post(port, 'order-sign', fresh(bodies.template['order-sign']));
  if (answer.status !== 200) throw new Error(`bare app answered ${answer.status}: ${answer.text.slice(0, 500)}`);
  return `bare: 200 ${answer.text}`;
}

// ---------------------------------------------------------------- load

function autocannonRun(port: number, hook: Hook, bodies: Bodies, seconds: number, connections: number, rate?: number): Promise<Measured> {
  const recorder = new LatencyRecorder();
  const body = freshBody(bodies.template[hook]);
  const instance = autocannon({
    url: `http://${HOST}:${port}${servicePath(hook)}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body(),
    // A fresh hookInstance per request (autocannon's own idReplacement miscounts Content-Length).
    requests: [{ setupRequest: (request) => ({ ...request, body: body() }) }],
    connections,
    pipelining: 1,
    duration: seconds,
    timeout: 10,
    ...(rate ? { overallRate: rate, ignoreCoordinatedOmission: true } : {}),
  });
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => recorder.response(status, ms));
  instance.on('reqError', () => recorder.error());
  return new Promise((resolve, reject) => {
    instance.then((result) => {
      const summary = recorder.summary(result.duration);
      resolve({ ...summary, errors: Math.max(summary.errors, result.errors), ...(rate ? { offeredRate: rate } : {}) });
    }, reject);
  });
}

function measure(scenario: Scenario, running: Running, bodies: Bodies, options: Options): Promise<Measured> {
  const { load, hook } = scenario;
  switch (load.kind) {
    case 'max':
      return autocannonRun(running.port, hook, bodies, options.seconds, load.connections ?? options.connections);
    case 'autocannon-rate':
      return autocannonRun(running.port, hook, bodies, options.seconds, 10, load.rate);
    case 'paced':
      return runPaced({
        host: HOST,
        port: running.port,
        path: servicePath(hook),
        body: freshBody(bodies.template[hook]),
        rate: load.rate,
        seconds: options.seconds,
        maxSockets: 64,
      });
  }
}

/** A body factory: the template with a new UUID as hookInstance each call, as bytes. */
function freshBody(template: string): () => Buffer {
  const at = template.indexOf(HOOK_INSTANCE_PLACEHOLDER);
  if (at < 0) throw new Error('body template has no hookInstance placeholder');
  const before = Buffer.from(template.slice(0, at));
  const after = Buffer.from(template.slice(at + HOOK_INSTANCE_PLACEHOLDER.length));
  return () => Buffer.concat([before, Buffer.from(randomUUID()), after]);
}

// ---------------------------------------------------------------- report

interface Row {
  scenario: Scenario;
  result: Measured;
  cpu: CpuUse;
}

/** Server CPU time per response, ms. */
function cpuPerRequest(row: Row): number | undefined {
  return row.cpu.serverMs !== undefined && row.result.completed > 0 ? row.cpu.serverMs / row.result.completed : undefined;
}

/** Above this share of the machine used by other processes during a run, its figures are suspect. */
const OTHER_LOAD_WARN_PERCENT = 10;
/** Before a scenario, wait for the machine to be busier than this at most (%, target idle). */
const QUIET_PERCENT = 15;

const ms = (v: number) => v.toFixed(2);

function table(rows: Row[]): string {
  const header = ['scenario', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'srv CPU ms/req', 'other load %'];
  const body = rows.map((row) => {
    const { scenario, result, cpu } = row;
    const perRequest = cpuPerRequest(row);
    return [
    scenario.label,
    result.offeredRate ? `${result.rps.toFixed(0)} of ${result.offeredRate}` : result.rps.toFixed(0),
    ms(result.p50),
    ms(result.p99),
    ms(result.max),
    String(result.non2xx),
    String(result.errors),
    perRequest !== undefined ? perRequest.toFixed(2) : '?',
    cpu.otherPercent !== undefined ? cpu.otherPercent.toFixed(0) : '?',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(fmt)].join('\n');
}

function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'FAIL';
}

function byRole(rows: Row[], role: Role): Measured | undefined {
  return rows.find((r) => r.scenario.role === role)?.result;
}

function rowByRole(rows: Row[], role: Role): Row | undefined {
  return rows.find((r) => r.scenario.role === role);
}

function judgement(rows: Row[], options: Options): { lines: string[]; pass: boolean; valid: boolean } {
  const lines: string[] = [];
  let pass = true;
  // A non-2xx answer makes a run worthless; timeouts of an overloaded fixed-rate run are a result.
  const valid = rows.every((r) => r.result.non2xx === 0 && (r.result.errors === 0 || r.scenario.load.kind === 'paced'));
  const overloaded = rows.filter((r) => r.scenario.load.kind === 'paced' && r.result.errors > 0);
  lines.push(`every response 2xx, no connection errors: ${verdict(valid)}${overloaded.length > 0 ? ` (timeouts in overloaded fixed-rate runs: ${overloaded.map((r) => `${r.scenario.label} ${r.result.errors}`).join('; ')})` : ''}`);
  pass &&= valid;
  const floor = byRole(rows, 'floor');
  const service = byRole(rows, 'throughput');
  if (floor && service) {
    const ratio = service.rps / floor.rps;
    lines.push(`ratio service (default config) / bare floor: ${(ratio * 100).toFixed(1)} % (target >= ${TARGET_RATIO * 100} %): ${verdict(ratio >= TARGET_RATIO)}`);
    pass &&= ratio >= TARGET_RATIO;
  }
  const floorRow = rowByRole(rows, 'floor');
  const serviceRow = rowByRole(rows, 'throughput');
  const floorCpu = floorRow ? cpuPerRequest(floorRow) : undefined;
  const serviceCpu = serviceRow ? cpuPerRequest(serviceRow) : undefined;
  if (floorCpu !== undefined && serviceCpu !== undefined) {
    lines.push(`  cross-check by server CPU time per request: floor ${floorCpu.toFixed(2)} ms / service ${serviceCpu.toFixed(2)} ms = ${((floorCpu / serviceCpu) * 100).toFixed(1)} % (less sensitive to other load on the machine)`);
  }
  const latency = byRole(rows, 'latency');
  if (latency) {
    const kept = latency.rps >= 0.97 * options.rate;
    const ok = latency.p99 <= TARGET_P99_MS && kept;
    lines.push(`p99 at ${options.rate} req/s (paced, default config): ${ms(latency.p99)} ms (target <= ${TARGET_P99_MS} ms), rate kept: ${kept ? 'yes' : 'no'}, client send lag max ${ms(latency.clientLagMax ?? 0)} ms: ${verdict(ok)}`);
    pass &&= ok;
  }
  const off = byRole(rows, 'store-off');
  if (service && off) {
    const ratio = service.rps / off.rps;
    lines.push(`decision log cost: default config / decision log off = ${(ratio * 100).toFixed(1)} % (issue 5 target >= ${TARGET_STORE_RATIO * 100} %): ${verdict(ratio >= TARGET_STORE_RATIO)}`);
  }
  const onSaturated = byRole(rows, 'store-on-saturated');
  const offSaturated = byRole(rows, 'store-off-saturated');
  if (onSaturated && offSaturated) {
    const ratio = onSaturated.rps / offSaturated.rps;
    lines.push(`decision log cost at saturation (${SATURATING_CONNECTIONS} connections): default config / decision log off = ${(ratio * 100).toFixed(1)} % (issue 5 target >= ${TARGET_STORE_RATIO * 100} %): ${verdict(ratio >= TARGET_STORE_RATIO)}`);
    pass &&= ratio >= TARGET_STORE_RATIO;
  }
  const pgSaturated = byRole(rows, 'store-postgres-saturated');
  if (pgSaturated && offSaturated) {
    const ratio = pgSaturated.rps / offSaturated.rps;
    lines.push(`decision log cost at saturation on PostgreSQL (same machine): ${(ratio * 100).toFixed(1)} % of decision log off: ${verdict(ratio >= TARGET_STORE_RATIO)}`);
  }
  const onPostgres = byRole(rows, 'store-postgres');
  if (onPostgres && off) {
    const ratio = onPostgres.rps / off.rps;
    lines.push(`decision log cost on PostgreSQL: PostgreSQL / decision log off = ${(ratio * 100).toFixed(1)} % (issue 5 target >= ${TARGET_STORE_RATIO * 100} %): ${verdict(ratio >= TARGET_STORE_RATIO)}`);
  }
  const info = byRole(rows, 'info');
  if (service && info && floor) {
    lines.push(`LOG_LEVEL=info (to /dev/null): ${info.rps.toFixed(0)} req/s = ${((info.rps / service.rps) * 100).toFixed(1)} % of LOG_LEVEL=warn, ${((info.rps / floor.rps) * 100).toFixed(1)} % of floor`);
  }
  const busy = rows.filter((r) => (r.cpu.otherPercent ?? 0) > OTHER_LOAD_WARN_PERCENT);
  if (busy.length > 0) {
    lines.push(`WARNING: other processes used more than ${OTHER_LOAD_WARN_PERCENT} % of the machine during ${busy.length} scenario(s) (${busy.map((r) => r.scenario.label).join('; ')}): those req/s and latencies are understated; rerun on a quiet machine`);
  }
  return { lines, pass, valid };
}

// ---------------------------------------------------------------- paired rounds

function median(values: number[]): number {
  return percentile(Float64Array.from(values).sort(), 50);
}

interface PairedSample {
  rps: number;
  cpuMsPerRequest: number | undefined;
  mainThreadMsPerRequest: number | undefined;
}

/**
 * `--paired`: on a shared VM one scenario's req/s moves by ±20–30 % from one minute to the next,
 * so ratios of scenarios measured minutes apart are unreliable. Here every target runs at once
 * (an idle one costs nothing), and each round measures all of them back to back, in an order
 * that rotates between rounds; a ratio is computed within each round and the median is reported.
 */
async function pairedMain(options: Options, bodies: Bodies, out: (s?: string) => void): Promise<void> {
  const rounds = Math.round(positive('BENCH_ROUNDS', process.env.BENCH_ROUNDS, 5));
  const seconds = (argValue('seconds') ?? process.env.BENCH_SECONDS) !== undefined ? options.seconds : 5;
  const postgres = startBenchPostgres(out);
  const floorTarget: Target = { kind: 'bare', label: 'bare Express floor', env: {}, stdout: 'pipe' };
  const serviceTarget: Target = { kind: 'service', label: 'service (default config)', env: {}, stdout: 'pipe' };
  const offTarget: Target = { kind: 'service', label: 'service (decision log off)', env: { DECISION_LOG: 'off' }, stdout: 'pipe' };
  const pgTarget: Target | undefined = postgres && { kind: 'service', label: 'service (decision log on PostgreSQL)', env: { DATABASE_URL: postgres.url }, stdout: 'pipe' };
  // --only keeps the floor and the default config, plus the other targets whose label matches.
  const others = [offTarget, threadsAlternative(), ...(pgTarget ? [pgTarget] : []), ...extraTargets()].filter(
    (t) => options.only === undefined || t.label.includes(options.only),
  );
  const targets = [floorTarget, serviceTarget, ...others];
  const loads = [options.connections, SATURATING_CONNECTIONS];
  out(`paired rounds: ${rounds} rounds x ${loads.join(' and ')} connections x ${targets.length} targets, ${seconds} s each, order rotating`);
  const cleanup: string[] = [];
  const running: Running[] = [];
  const samples = new Map<string, PairedSample[]>();
  const key = (label: string, connections: number) => `${label} @${connections}`;
  try {
    for (const target of targets) {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'crd-bench-data-'));
      cleanup.push(dataDir);
      const r = await startTarget(target, options, undefined, dataDir);
      running.push(r);
      out(`  ${target.label}: ${target.kind === 'service' ? await verifyService(r.port, 'order-sign', bodies) : await verifyBare(r.port, bodies)}`);
      await autocannonRun(r.port, 'order-sign', bodies, options.warmup, options.connections);
    }
    for (let round = 0; round < rounds; round++) {
      const order = running.map((_, i) => running[(i + round) % running.length]).filter((r): r is Running => r !== undefined);
      const line: string[] = [];
      for (const connections of loads) {
        for (const r of order) {
          if (options.quietWaitSeconds > 0) await waitForQuiet(Math.min(options.quietWaitSeconds, 10) * 1000, QUIET_PERCENT);
          const meter = startCpuMeter(r.pid);
          const measured = await autocannonRun(r.port, 'order-sign', bodies, seconds, connections);
          const cpu = meter();
          if (measured.non2xx > 0 || measured.errors > 0) throw new Error(`${r.target.label}: ${measured.non2xx} non-2xx, ${measured.errors} errors`);
          const perRequest = (ms: number | undefined) => (ms !== undefined && measured.completed > 0 ? ms / measured.completed : undefined);
          const sample = { rps: measured.rps, cpuMsPerRequest: perRequest(cpu.serverMs), mainThreadMsPerRequest: perRequest(cpu.serverMainThreadMs) };
          const list = samples.get(key(r.target.label, connections)) ?? [];
          list.push(sample);
          samples.set(key(r.target.label, connections), list);
          line.push(`${r.target.label.replace('service ', '')}@${connections} ${sample.rps.toFixed(0)}`);
          await sleep(300);
        }
      }
      out(`  round ${round + 1}: ${line.join(', ')}`);
    }
  } finally {
    for (const r of running) await r.stop();
    killAll();
    for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
    postgres?.stop();
  }

  out();
  out(`${'target'.padEnd(48)}  ${'conn'.padStart(4)}  ${'median req/s'.padStart(12)}  ${'range'.padStart(11)}  ${'srv CPU ms/req'.padStart(14)}  ${'main thread ms/req'.padStart(18)}`);
  for (const connections of loads) {
    for (const target of targets) {
      const list = samples.get(key(target.label, connections)) ?? [];
      const rps = list.map((x) => x.rps);
      const cpu = list.flatMap((x) => (x.cpuMsPerRequest !== undefined ? [x.cpuMsPerRequest] : []));
      const main = list.flatMap((x) => (x.mainThreadMsPerRequest !== undefined ? [x.mainThreadMsPerRequest] : []));
      out(
        `${target.label.padEnd(48)}  ${String(connections).padStart(4)}  ${median(rps).toFixed(0).padStart(12)}  ${`${Math.min(...rps).toFixed(0)}–${Math.max(...rps).toFixed(0)}`.padStart(11)}  ` +
          `${(cpu.length ? median(cpu).toFixed(2) : '?').padStart(14)}  ${(main.length ? median(main).toFixed(2) : '?').padStart(18)}`,
      );
    }
  }
  out();
  const ratio = (a: string, b: string, connections: number): number[] => {
    const x = samples.get(key(a, connections)) ?? [];
    const y = samples.get(key(b, connections)) ?? [];
    return x.flatMap((s, i) => (y[i] && y[i].rps > 0 ? [s.rps / y[i].rps] : []));
  };
  let pass = true;
  const judge = (label: string, values: number[], target: number, counts: boolean): void => {
    if (values.length === 0) return;
    const m = median(values);
    const ok = m >= target;
    if (counts) pass &&= ok;
    out(`${label}: median ${(m * 100).toFixed(1)} % (rounds ${values.map((v) => (v * 100).toFixed(0)).join(', ')}; target >= ${target * 100} %): ${verdict(ok)}`);
  };
  const floor = floorTarget.label;
  const service = serviceTarget.label;
  const off = others.includes(offTarget) ? offTarget.label : undefined;
  const pg = pgTarget && others.includes(pgTarget) ? pgTarget.label : undefined;
  for (const connections of loads) judge(`service (default config) / bare floor, ${connections} connections`, ratio(service, floor, connections), TARGET_RATIO, connections === options.connections);
  // Every other configuration against the floor and against the default, so an alternative (the
  // other hook-thread setting, a BENCH_EXTRA) is judged within the same rounds.
  for (const { label: other } of others) {
    judge(`${other} / bare floor, ${options.connections} connections`, ratio(other, floor, options.connections), TARGET_RATIO, false);
    if (other !== off && other !== pg) for (const connections of loads) judge(`${other} / default config, ${connections} connections`, ratio(other, service, connections), 1, false);
  }
  if (off) for (const connections of loads) judge(`decision log on PGlite / off, ${connections} connections (issue 5)`, ratio(service, off, connections), TARGET_STORE_RATIO, true);
  if (pg && off) for (const connections of loads) judge(`decision log on PostgreSQL (same machine) / off, ${connections} connections`, ratio(pg, off, connections), TARGET_STORE_RATIO, false);
  // Informational: the service thread's own cost of the log. Where the store's work (PGlite's
  // worker, or a PostgreSQL server) has a core of its own, this ratio bounds the throughput cost.
  const mainMs = (label: string, connections: number): number | undefined => {
    const values = (samples.get(key(label, connections)) ?? []).flatMap((x) => (x.mainThreadMsPerRequest !== undefined ? [x.mainThreadMsPerRequest] : []));
    return values.length > 0 ? median(values) : undefined;
  };
  for (const [label, name] of [[service, 'PGlite'], [pg, 'PostgreSQL']] as const) {
    if (!label || !off) continue;
    for (const connections of loads) {
      const on = mainMs(label, connections);
      const without = mainMs(off, connections);
      if (on !== undefined && without !== undefined && on > 0) {
        out(`service thread CPU per request, decision log on ${name} vs off, ${connections} connections: ${on.toFixed(2)} ms vs ${without.toFixed(2)} ms = ${((without / on) * 100).toFixed(1)} % (the throughput kept where the store's own work has a core to itself)`);
      }
    }
  }
  out(`overall: ${verdict(pass)}`);
  process.exitCode = options.strict && !pass ? 1 : 0;
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const options = readOptions();
  const template = { 'order-sign': benchBody('order-sign'), 'order-select': benchBody('order-select') };
  const bodies: Bodies = {
    template,
    bytes: { 'order-sign': Buffer.byteLength(fresh(template['order-sign'])), 'order-select': Buffer.byteLength(fresh(template['order-select'])) },
  };
  const out = (s = '') => process.stdout.write(`${s}\n`);
  if (hasFlag('paired')) return pairedMain(options, bodies, out);
  const postgres = startBenchPostgres(out);
  const list = scenarios(options, postgres?.url);

  out(`gene-therapy CRD benchmark: node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'})`);
  out(`body: order-sign ${(bodies.bytes['order-sign'] / 1024).toFixed(1)} KiB (${bodies.bytes['order-sign']} bytes), order-select ${(bodies.bytes['order-select'] / 1024).toFixed(1)} KiB; hookInstance unique per request`);
  out(`load: ${options.seconds} s per scenario after ${options.warmup} s warm-up; max = autocannon ${options.connections} connections, pipelining 1; paced = open-loop ${options.rate} req/s over up to 64 keep-alive connections`);
  out('latency: per-response times measured in this process (µs resolution); the paced run is the one judged —');
  out('  autocannon overallRate lets each connection send its per-second quota back to back, i.e. bursts');
  const load = os.loadavg()[0] ?? 0;
  out(`load average (1 min) before the run: ${load.toFixed(2)}${load > 0.5 ? ' (WARNING: other work on this machine distorts the figures)' : ''}`);
  out();

  // Group scenarios by target, keeping first-appearance order; one child per target.
  const targets: Target[] = [];
  for (const s of list) if (!targets.includes(s.target)) targets.push(s.target);

  const rows: Row[] = [];
  const profiles: { label: string; dir: string }[] = [];
  const cleanup: string[] = [];
  try {
    for (const target of targets) {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'crd-bench-data-'));
      cleanup.push(dataDir);
      const profileDir = options.profile && target.kind === 'service' ? mkdtempSync(path.join(os.tmpdir(), 'crd-bench-prof-')) : undefined;
      if (profileDir) profiles.push({ label: target.label, dir: profileDir });
      const running = await startTarget(target, options, profileDir, dataDir);
      try {
        const shown = Object.entries(running.env)
          .filter(([k]) => !['PORT', 'HOST', 'CDS_DATA_DIR', 'BENCH_SOURCES_DIR'].includes(k))
          .map(([k, v]) => `${k}=${v}`)
          .join(' ');
        out(`[${target.label}] port ${running.port}, env: ${shown}${target.stdout === 'devnull' ? ', stdout to /dev/null' : ''}`);
        const mine = list.filter((s) => s.target === target);
        const hooks = [...new Set(mine.map((s) => s.hook))];
        if (target.kind === 'service') for (const hook of hooks) out(`  check: ${await verifyService(running.port, hook, bodies)}`);
        else out(`  check: ${await verifyBare(running.port, bodies)}`);
        for (const hook of hooks) await autocannonRun(running.port, hook, bodies, options.warmup, options.connections);
        for (const scenario of mine) {
          let best: Row | undefined;
          for (let attempt = 1; attempt <= options.attempts; attempt++) {
            if (options.quietWaitSeconds > 0) {
              const busy = await waitForQuiet(options.quietWaitSeconds * 1000, QUIET_PERCENT);
              if (busy >= QUIET_PERCENT) out(`  (machine still ${busy.toFixed(0)} % busy after waiting ${options.quietWaitSeconds} s; measuring anyway)`);
            }
            const meter = startCpuMeter(running.pid);
            const measured = await measure(scenario, running, bodies, options);
            const row: Row = { scenario, result: measured, cpu: meter() };
            if (!best || (row.cpu.otherPercent ?? 0) < (best.cpu.otherPercent ?? 0)) best = row;
            const other = row.cpu.otherPercent ?? 0;
            if (other <= OTHER_LOAD_WARN_PERCENT) break;
            if (attempt < options.attempts) out(`  (${scenario.label}: other processes used ${other.toFixed(0)} % of the machine; measuring again)`);
          }
          if (!best) continue;
          rows.push(best);
          const { result, cpu } = best;
          const codes = Object.entries(result.statusCounts).map(([k, v]) => `${k}:${v}`).join(' ');
          const load = cpu.otherPercent !== undefined ? `, other load ${cpu.otherPercent.toFixed(0)} %` : '';
          out(`  ${scenario.label}: ${result.rps.toFixed(0)} req/s, p50 ${ms(result.p50)} ms, p99 ${ms(result.p99)} ms, max ${ms(result.max)} ms [${codes}${result.errors ? ` errors:${result.errors}` : ''}${load}]`);
          await sleep(500);
        }
        if (target.stdout === 'pipe' && running.stdoutLines() > 0) out(`  note: the child wrote ${running.stdoutLines()} log line(s) at ${running.env.LOG_LEVEL}`);
      } finally {
        await running.stop();
      }
    }
  } finally {
    killAll();
    for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
    postgres?.stop();
  }

  out();
  out(table(rows));
  out();
  const { lines, pass, valid } = judgement(rows, options);
  for (const line of lines) out(line);
  out(`overall: ${verdict(pass)}`);

  if (profiles.length > 0) {
    out();
    out('CPU profiles (--cpu-prof on the service children; warm-up and every scenario of that child):');
    for (const { label, dir } of profiles) {
      out(`[${label}]`);
      // One profile per thread: the main thread, tsx's module-loader thread (startup only) and any
      // worker (e.g. an embedded database). Threads with little work are left out.
      const sources = new SourceLines(path.join(dir, 'sources'));
      const summaries = profilesIn(dir)
        .map((file) => summariseProfile(file, ROOT, sources, 20))
        .sort((a, b) => b.busySamples - a.busySamples);
      const most = summaries[0]?.busySamples ?? 0;
      for (const summary of summaries.filter((x) => x.busySamples >= most * 0.1)) out(formatProfile(summary));
    }
  }
  if (options.json) {
    writeFileSync(
      options.json,
      JSON.stringify({ options, bodyBytes: bodies.bytes, rows: rows.map((r) => ({ scenario: r.scenario.label, env: r.scenario.target.env, hook: r.scenario.hook, load: r.scenario.load, ...r.result, cpu: r.cpu })), judgement: lines }, null, 2),
    );
  }
  process.exitCode = !valid || (options.strict && !pass) ? 1 : 0;
}

main().catch((error: unknown) => {
  killAll();
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
