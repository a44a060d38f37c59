import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeKey, signToken, type TestKey } from '../security/helpers.ts';
import { ORDER_SIGN, ROOT } from '../support/app.ts';
import { bearer } from './helpers.ts';

/**
 * Issue 4, startup policy through the real entry point (`node --import tsx server/main.ts` as a
 * child process): production refuses to run without trusted clients, starts with them (and then
 * enforces them), and development without them starts with a loud warning.
 */

const ISS = 'https://ehr.example.org';

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function start(env: Record<string, string>): Run {
  let out = '';
  let err = '';
  // A clean environment: nothing inherited may turn authentication on or off by accident.
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(run: Run, pattern: RegExp, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pattern.test(run.stdout())) {
    if (run.child.exitCode !== null) assert.fail(`exited ${run.child.exitCode} before ${pattern}: ${run.stderr()}${run.stdout()}`);
    if (Date.now() > deadline) assert.fail(`no ${pattern} within ${ms} ms: ${run.stderr()}${run.stdout()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stop(run: Run): Promise<number | null> {
  if (run.child.exitCode === null) run.child.kill('SIGTERM');
  return run.exited;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

let dir: string;
let key: TestKey;
let clientsFile: string;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'crd-startup-'));
  key = await makeKey('ES384', 'startup-1');
  clientsFile = path.join(dir, 'trusted-clients.json');
  writeFileSync(clientsFile, JSON.stringify([{ iss: ISS, jwks: { keys: [key.publicJwk] }, fhirServers: ['https://ehr.example.org/fhir/'] }]));
});

after(() => rmSync(dir, { recursive: true, force: true }));

// Each test is its own process on its own port: they run concurrently.
describe('startup through server/main.ts', { concurrency: true }, () => {
  test('NODE_ENV=production without CDS_TRUSTED_CLIENTS: exits non-zero with a clear message', async () => {
    const run = start({ NODE_ENV: 'production', PORT: String(await freePort()), CDS_DATA_DIR: dir, DECISION_LOG: 'off' });
    const code = await run.exited;
    assert.notEqual(code, 0);
    assert.match(run.stderr(), /Refusing to start: NODE_ENV=production requires trusted CDS clients \(set CDS_TRUSTED_CLIENTS\)/);
    assert.doesNotMatch(run.stdout(), /listening/);
  });

  test('NODE_ENV=production with an http:// jku in the clients file: exits non-zero naming the file and field', async () => {
    const bad = path.join(dir, 'bad-clients.json');
    writeFileSync(bad, JSON.stringify([{ iss: ISS, jku: ['http://ehr.example.org/jwks.json'], fhirServers: [] }]));
    const run = start({ NODE_ENV: 'production', PORT: String(await freePort()), CDS_DATA_DIR: dir, DECISION_LOG: 'off', CDS_TRUSTED_CLIENTS: bad });
    assert.notEqual(await run.exited, 0);
    assert.match(run.stderr(), /bad-clients\.json: \[0\]\.jku\[0\]: must use https/);
  });

  test('NODE_ENV=production with DEBUG naming fhir-kit-client: refuses to start (its debug output carries bearer tokens)', async () => {
    const run = start({ NODE_ENV: 'production', PORT: String(await freePort()), CDS_DATA_DIR: dir, DECISION_LOG: 'off', CDS_TRUSTED_CLIENTS: clientsFile, DEBUG: 'fhir-kit-client:*' });
    assert.notEqual(await run.exited, 0);
    assert.match(run.stderr(), /^startup failed: Refusing to start: DEBUG enables fhir-kit-client logging, which prints bearer tokens/m);
    assert.doesNotMatch(run.stderr(), /\n\s+at /, 'a clean message, not a stack trace');
    assert.doesNotMatch(run.stdout(), /listening/);
  });

  test('NODE_ENV=production with a clients file: starts with authentication enforced, and enforces it', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const run = start({ NODE_ENV: 'production', PORT: String(port), CDS_BASE_URL: base, CDS_DATA_DIR: dir, DECISION_LOG: 'off', CDS_TRUSTED_CLIENTS: clientsFile });
    try {
      await waitFor(run, /"auth":"enforced".*service listening/);
      assert.equal((await fetch(`${base}/health`)).status, 200);
      assert.equal((await fetch(`${base}/cds-services`)).status, 401);
      const ok = await fetch(`${base}/cds-services`, { headers: { authorization: bearer(await signToken(key, { iss: ISS, aud: `${base}/cds-services` })) } });
      assert.equal(ok.status, 200);
      const service = await fetch(`${base}${ORDER_SIGN}`, {
        method: 'POST',
        headers: { authorization: bearer(await signToken(key, { iss: ISS, aud: `${base}/cds-services` })), 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(service.status, 401, 'a discovery token is not good for a service');
      assert.doesNotMatch(run.stdout(), /AUTHENTICATION IS OFF/);
    } finally {
      assert.equal(await stop(run), 0);
    }
  });

  test('development without CDS_TRUSTED_CLIENTS: starts, authentication off, and says so loudly', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const run = start({ NODE_ENV: 'development', PORT: String(port), CDS_BASE_URL: base, CDS_DATA_DIR: dir, DECISION_LOG: 'off' });
    try {
      await waitFor(run, /"auth":"off".*service listening/);
      const warning = run
        .stdout()
        .split('\n')
        .filter((l) => l.includes('client_auth_disabled'))
        .map((l) => JSON.parse(l) as { level: number; msg: string });
      assert.equal(warning.length, 1);
      assert.equal(warning[0]!.level, 40);
      assert.match(warning[0]!.msg, /\*\*\* CDS CLIENT AUTHENTICATION IS OFF: CDS_TRUSTED_CLIENTS is not set, so any caller can invoke these services\. Development only\. \*\*\*/);
      assert.equal((await fetch(`${base}/cds-services`)).status, 200);
    } finally {
      assert.equal(await stop(run), 0);
    }
  });
});
