#!/usr/bin/env node
// Runs every test file under test/ with node:test + tsx. Node 20's test runner does not expand
// globs itself, so the file list is built here. Extra arguments are passed to node --test
// (e.g. `npm test -- --test-name-pattern=titer`).
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...findTests(full));
    else if (name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

const files = findTests(path.join(root, 'test')).sort();
if (files.length === 0) {
  console.error('no test files found under test/');
  process.exit(1);
}

// The decision-store suite also runs on a real PostgreSQL: start a throwaway one unless the
// caller gave one (TEST_DATABASE_URL) or opted out (SKIP_POSTGRES). It is stopped at the end,
// also when tests fail or the run is interrupted.
const pgScript = path.join(root, 'scripts', 'test-postgres.sh');
let startedPostgres;
if (!process.env.TEST_DATABASE_URL && !process.env.SKIP_POSTGRES) {
  const started = spawnSync('bash', [pgScript, 'start'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  const url = started.status === 0 ? started.stdout.trim().split('\n').pop() : '';
  if (url) {
    startedPostgres = url;
    console.error(`run-tests: PostgreSQL for the tests at ${url}`);
  } else {
    console.error('run-tests: could not start PostgreSQL; the PostgreSQL suite will fail');
  }
} else if (process.env.SKIP_POSTGRES) {
  console.error('run-tests: SKIP_POSTGRES is set: the PostgreSQL suite is skipped');
}

function stopPostgres() {
  if (!startedPostgres) return;
  const url = startedPostgres;
  startedPostgres = undefined;
  spawnSync('bash', [pgScript, 'stop', url], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}

const env = { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' };
if (startedPostgres) env.TEST_DATABASE_URL = startedPostgres;
const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...process.argv.slice(2), ...files], {
  stdio: 'inherit',
  cwd: root,
  env,
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    child.kill(signal);
    stopPostgres();
    process.exit(1);
  });
}
child.on('close', (code) => {
  stopPostgres();
  process.exit(code ?? 1);
});
