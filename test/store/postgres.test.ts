import assert from 'node:assert/strict';
import { test } from 'node:test';
import { postgresEngine } from './helpers.ts';
import { storeSuite } from './suite.ts';

// `npm test` starts a throwaway PostgreSQL (scripts/test-postgres.sh) and sets TEST_DATABASE_URL.
// Without it this suite fails, unless skipped explicitly by hand with SKIP_POSTGRES=1.
const url = process.env.TEST_DATABASE_URL;
if (url) {
  storeSuite(postgresEngine(url));
} else if (process.env.SKIP_POSTGRES === '1') {
  test('decision store on postgres', { skip: 'SKIP_POSTGRES=1' }, () => undefined);
} else {
  test('decision store on postgres', () => {
    assert.fail('TEST_DATABASE_URL is not set: run `npm test` (it starts PostgreSQL), or `scripts/test-postgres.sh start` and export the URL, or set SKIP_POSTGRES=1 to skip this file');
  });
}
