import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { pino } from 'pino';
import { createLogger, REDACT_PATHS } from '../../server/logger.ts';
import { safeErrorMessage, scrubSecrets, SUGGESTED_EXTRA_REDACT_PATHS } from '../../server/security/redaction.ts';
import { assertNoTokenLeakingDebug, debugEnables } from '../../server/security/debug-guard.ts';
import { makeKey, signToken } from './helpers.ts';

let jwt: string;
before(async () => {
  jwt = await signToken(await makeKey('ES384', 'k'));
});

describe('scrubSecrets', () => {
  it('removes JWTs wherever they appear', () => {
    for (const text of [jwt, `token was ${jwt}.`, `"${jwt}"`, `url?x=${jwt}&y=1`]) {
      const out = scrubSecrets(text);
      for (const part of jwt.split('.')) assert.ok(!out.includes(part), out);
    }
  });
  it('removes bearer credentials and Authorization header values', () => {
    assert.equal(scrubSecrets('Authorization: Bearer abc.def-ghi'), 'Authorization: [redacted]');
    assert.equal(scrubSecrets('sent Bearer opaque-token-123 to server'), 'sent Bearer [redacted] to server');
    assert.equal(scrubSecrets('{"authorization":"Basic dXNlcjpwYXNz"}'), '{"authorization":"[redacted]"}');
  });
  it('removes secret query and JSON parameters but keeps FHIR search parameters', () => {
    assert.equal(
      scrubSecrets('HTTP 401: GET https://ehr.example.org/fhir/Patient?code=1234-5&access_token=s3cr3t&_count=10'),
      'HTTP 401: GET https://ehr.example.org/fhir/Patient?code=1234-5&access_token=[redacted]&_count=10',
    );
    assert.equal(scrubSecrets('{"access_token": "s3cr3t", "token_type": "Bearer"}'), '{"access_token": "[redacted]", "token_type": "Bearer"}');
  });
  it('removes URL credentials', () => {
    assert.equal(scrubSecrets('fetch https://user:pw@ehr.example.org/fhir failed'), 'fetch https://[redacted]@ehr.example.org/fhir failed');
  });
  it('leaves ordinary text and host names alone', () => {
    const text = 'GET https://launch.smarthealthit.org/v/r4/fhir/Observation?patient=123 took 12.5 ms';
    assert.equal(scrubSecrets(text), text);
  });
  it('safeErrorMessage scrubs and shortens', () => {
    const msg = safeErrorMessage(new Error(`boom ${jwt}`), 40);
    assert.ok(!msg.includes(jwt.split('.')[2] ?? 'x'));
    assert.ok(msg.length <= 41);
    assert.equal(safeErrorMessage(42), 'non-Error thrown');
  });
});

describe('pino redaction in server/logger.ts', () => {
  it('covers req.headers.authorization and the token fields it lists', () => {
    assert.ok(REDACT_PATHS.includes('req.headers.authorization'));
    const lines: string[] = [];
    const logger = createLogger('info', { write: (s: string) => void lines.push(s) });
    logger.info({ req: { headers: { authorization: `Bearer ${jwt}` } }, fhirAuthorization: { access_token: 'at-secret' } }, 'request');
    logger.info({ hook: { fhirAuthorization: { access_token: 'at-secret-2' } }, prefetch: { patient: { name: 'Alice' } } }, 'hook');
    const out = lines.join('');
    assert.ok(!out.includes(jwt.split('.')[1] ?? 'x'));
    assert.ok(!out.includes('at-secret'));
    assert.ok(!out.includes('Alice'));
  });
  it('the suggested extra paths are valid pino paths that close the two-level gap', () => {
    const lines: string[] = [];
    const logger = createLogger('info', { write: (s: string) => void lines.push(s) });
    // server/logger.ts has adopted them: a two-level-deep access_token is redacted by the service logger.
    logger.info({ a: { b: { access_token: 'deep-secret' } } }, 'x');
    assert.ok(!lines.join('').includes('deep-secret'));
    const extra: string[] = [];
    const safer = pino({ redact: [...REDACT_PATHS, ...SUGGESTED_EXTRA_REDACT_PATHS] }, { write: (s: string) => void extra.push(s) });
    safer.info({ a: { b: { access_token: 'deep-secret' } }, req: { headers: { cookie: 'sid=1' } }, context: { patientId: 'p1' } }, 'x');
    const out = extra.join('');
    assert.ok(!out.includes('deep-secret'));
    assert.ok(!out.includes('sid=1'));
    assert.ok(!out.includes('p1'));
  });
});

describe('assertNoTokenLeakingDebug', () => {
  it('understands debug patterns', () => {
    assert.equal(debugEnables('fhir-kit-client:*', 'fhir-kit-client:info'), true);
    assert.equal(debugEnables('*', 'fhir-kit-client:error'), true);
    assert.equal(debugEnables('fhir-*', 'fhir-kit-client:info'), true);
    assert.equal(debugEnables('express:*', 'fhir-kit-client:info'), false);
    assert.equal(debugEnables('*,-fhir-kit-client:*', 'fhir-kit-client:info'), false);
    assert.equal(debugEnables(undefined, 'fhir-kit-client:info'), false);
  });
  it('throws in production when DEBUG would print fhir-kit-client headers', () => {
    assert.throws(() => assertNoTokenLeakingDebug({ NODE_ENV: 'production', DEBUG: 'fhir-kit-client:*' }), /Refusing to start/);
    assert.throws(() => assertNoTokenLeakingDebug({ NODE_ENV: 'production', DEBUG: '*' }), /Refusing to start/);
    assert.deepEqual(assertNoTokenLeakingDebug({ NODE_ENV: 'production', DEBUG: 'express:*' }), { stripped: false });
  });
  it('strips it elsewhere, keeping other namespaces', () => {
    const env: NodeJS.ProcessEnv = { NODE_ENV: 'development', DEBUG: 'express:*,fhir-kit-client:info' };
    assert.deepEqual(assertNoTokenLeakingDebug(env), { stripped: true });
    assert.equal(debugEnables(env.DEBUG, 'fhir-kit-client:info'), false);
    assert.equal(debugEnables(env.DEBUG, 'express:router'), true);
    assert.deepEqual(assertNoTokenLeakingDebug(env), { stripped: false });
  });
});
