/** Domain keys: the shared vectors, and no collisions across tens of thousands of names. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { assertDistinctDomainKeys, domainKey, formatDomainKey } from '../../src/core/firewall/domainKey';

const vectors = JSON.parse(readFileSync(join(__dirname, '..', 'vectors', 'domain-keys.json'), 'utf8')) as { vectors: { destination: string; key: string }[] };

test('the TypeScript core reproduces every shared vector', () => {
  assert.ok(vectors.vectors.length >= 15);
  for (const v of vectors.vectors) assert.equal(formatDomainKey(domainKey(v.destination)), v.key, v.destination);
});

test('a wildcard and its apex are different destinations with different keys', () => {
  assert.notEqual(domainKey('example.com'), domainKey('.example.com'));
});

test('50,000 realistic destinations have 50,000 distinct keys', () => {
  const names: string[] = [];
  const tlds = ['com', 'org', 'net', 'io', 'dev'];
  for (let i = 0; i < 10_000; i++) {
    const base = `svc${i}.example${i % 97}.${tlds[i % tlds.length]}`;
    names.push(base, `.${base}`, `api.${base}`, `10.${(i >> 8) & 255}.${i & 255}.${i % 7}`, `a${i}b`);
  }
  const keys = assertDistinctDomainKeys(names);
  assert.equal(new Set(keys.values()).size, new Set(names).size);
});

test('a collision is refused, naming both destinations', () => {
  // A real 64-bit collision cannot be found for a test; a key function that collides checks the guard.
  const truncated = (d: string) => domainKey(d) & 0xfn;
  assert.throws(() => assertDistinctDomainKeys(Array.from({ length: 17 }, (_, i) => `h${i}.example.com`), truncated), /the destinations 'h\d+\.example\.com' and 'h\d+\.example\.com' have the same domain key/);
});

test('non-ASCII names are refused (rules hold their punycode form)', () => {
  assert.throws(() => domainKey('bücher.example'), /ASCII/);
});
