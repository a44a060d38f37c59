import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplayCache } from '../../server/security/replay-cache.ts';

describe('ReplayCache', () => {
  it('detects a replay until the entry expires', () => {
    const cache = new ReplayCache(10);
    assert.equal(cache.remember('iss', 'j', 1000, 0), 'ok');
    assert.equal(cache.remember('iss', 'j', 1000, 999), 'replay');
    assert.equal(cache.remember('iss', 'j', 3000, 1000), 'ok');
  });
  it('when full, reclaims only expired entries and otherwise refuses', () => {
    const cache = new ReplayCache(2);
    assert.equal(cache.remember('i', 'a', 1000, 0), 'ok');
    assert.equal(cache.remember('i', 'b', 5000, 0), 'ok');
    assert.equal(cache.remember('i', 'c', 5000, 500), 'full');
    assert.equal(cache.remember('i', 'c', 5000, 1000), 'ok');
    assert.equal(cache.size, 2);
    // "b" is unexpired, so it is still remembered.
    assert.equal(cache.remember('i', 'b', 5000, 1000), 'replay');
    assert.equal(cache.remember('i', 'd', 6000, 2000), 'full');
  });
  it('keys by issuer and jti without ambiguity', () => {
    const cache = new ReplayCache(10);
    assert.equal(cache.remember('a:b', 'c', 1000, 0), 'ok');
    assert.equal(cache.remember('a', 'b:c', 1000, 0), 'ok');
  });
});
