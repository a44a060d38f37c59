import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import {
  authMode,
  loadTrustedClients,
  resolveTrustedClients,
  type TrustedClient,
} from '../../server/security/trusted-clients.ts';
import { makeKey, type TestKey } from './helpers.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'trusted-clients-'));
let n = 0;
function writeClients(content: unknown): string {
  const file = path.join(dir, `clients-${n++}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

let key: TestKey;
before(async () => {
  key = await makeKey('ES384', 'k1');
});

function valid(): TrustedClient[] {
  return [
    {
      iss: 'https://inferno.example.org/custom/crd_server',
      jku: ['https://inferno.example.org/custom/crd_server/jwks.json'],
      fhirServers: ['https://ehr.example.org/fhir/'],
    },
    { iss: 'https://ehr.example.org', name: 'Example EHR', jwks: { keys: [key.publicJwk] }, fhirServers: [] },
  ];
}

function expectError(content: unknown, ...fragments: string[]): void {
  const file = writeClients(content);
  assert.throws(
    () => loadTrustedClients(file, { requireHttps: true }),
    (err: Error) => {
      assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
      for (const f of fragments) assert.ok(err.message.includes(f), `message mentions ${f}: ${err.message}`);
      return true;
    },
  );
}

describe('trusted clients file', () => {
  it('loads a valid file', () => {
    const clients = loadTrustedClients(writeClients(valid()), { requireHttps: true });
    assert.equal(clients.length, 2);
    assert.equal(clients[1]?.jwks?.keys[0]?.kid, 'k1');
  });

  it('loads the CDS Hooks spec example JWKS', async () => {
    const { default: example } = await import('../conformance/examples/cds-hooks-spec/jwt_client_auth_example.json', { with: { type: 'json' } });
    const clients = loadTrustedClients(writeClients([{ iss: example.payload.iss, jwks: example.jwks_public, jku: [example.header.jku], fhirServers: [] }]));
    assert.equal(clients[0]?.iss, 'https://fhir-ehr.example.com/');
  });

  it('names the file and the field for each kind of mistake', () => {
    expectError('[{', 'not valid JSON');
    expectError({}, 'must be array');
    expectError([], 'must NOT have fewer than 1 items');
    expectError([{ jku: ['https://a.example/j'], fhirServers: [] }], '[0].iss: is required');
    expectError([{ iss: 'x', jku: ['https://a.example/j'] }], '[0].fhirServers: is required');
    expectError([{ iss: 'x', fhirServers: [] }], '[0]: needs "jwks" or "jku"');
    expectError([{ iss: 'x', jku: ['https://a.example/j'], fhirServers: [], fhirServer: 'https://x' }], '[0].fhirServer: unknown field');
    expectError([{ iss: 'x', jku: 'https://a.example/j', fhirServers: [] }], '[0].jku: must be array');
    expectError([{ iss: 'x', jku: ['not a url'], fhirServers: [] }], '[0].jku[0]');
    expectError([{ iss: 'x', jku: ['http://a.example/j'], fhirServers: [] }], '[0].jku[0]: must use https');
    expectError([{ iss: 'x', jku: ['https://a.example/j'], fhirServers: ['https://user:pw@ehr.example.org/fhir'] }], '[0].fhirServers[0]');
    expectError(
      [{ iss: 'x', jku: ['https://a.example/j'], fhirServers: [] }, { iss: 'x', jku: ['https://a.example/j'], fhirServers: [] }],
      '[1].iss: duplicate issuer',
    );
    expectError([{ iss: 'x', jwks: { keys: [{ kty: 'oct', kid: 'a', k: 'c2VjcmV0' }] }, fhirServers: [] }], '[0].jwks.keys[0].kty');
    expectError([{ iss: 'x', jwks: { keys: [{ ...key.publicJwk, kid: undefined }] }, fhirServers: [] }], '[0].jwks.keys[0].kid: is required');
    expectError([{ iss: 'x', jwks: { keys: [{ ...key.publicJwk, alg: 'HS256' }] }, fhirServers: [] }], '[0].jwks.keys[0].alg');
    expectError([{ iss: 'x', jwks: { keys: [key.publicJwk, key.publicJwk] }, fhirServers: [] }], '[0].jwks.keys[1].kid: duplicate');
  });

  it('refuses private key material', async () => {
    const { privateKey } = await generateKeyPair('ES384', { extractable: true });
    const jwk = { ...(await exportJWK(privateKey)), kid: 'p' };
    expectError([{ iss: 'x', jwks: { keys: [jwk] }, fhirServers: [] }], '[0].jwks.keys[0].d: private key material');
  });

  it('reports an unreadable file', () => {
    assert.throws(() => loadTrustedClients(path.join(dir, 'missing.json')), /missing\.json: cannot be read \(ENOENT\)/);
  });
});

describe('authentication mode', () => {
  it('refuses to start in production without trusted clients', () => {
    assert.throws(() => authMode({ nodeEnv: 'production' }, undefined), /Refusing to start/);
    assert.throws(() => authMode({ nodeEnv: 'production' }, []), /Refusing to start/);
    assert.throws(() => resolveTrustedClients({ nodeEnv: 'production', trustedClientsFile: undefined }), /Refusing to start/);
  });
  it('enforces authentication when clients are configured', () => {
    assert.equal(authMode({ nodeEnv: 'production' }, valid()), 'enforced');
    assert.equal(authMode({ nodeEnv: 'development' }, valid()), 'enforced');
    const resolved = resolveTrustedClients({ nodeEnv: 'production', trustedClientsFile: writeClients(valid()) });
    assert.equal(resolved.mode, 'enforced');
    assert.equal(resolved.clients?.length, 2);
  });
  it('turns authentication off in development without a clients file', () => {
    assert.equal(authMode({ nodeEnv: 'development' }, undefined), 'off');
    assert.deepEqual(resolveTrustedClients({ nodeEnv: 'test', trustedClientsFile: undefined }), { mode: 'off', clients: undefined });
  });
  it('requires https URLs in production', () => {
    const file = writeClients([{ iss: 'x', jku: ['http://a.example/j'], fhirServers: [] }]);
    assert.throws(() => resolveTrustedClients({ nodeEnv: 'production', trustedClientsFile: file }), /must use https/);
    assert.equal(resolveTrustedClients({ nodeEnv: 'development', trustedClientsFile: file }).mode, 'enforced');
  });
});
