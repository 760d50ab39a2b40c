import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSecretBox, parseKey, SecretsKeyError } from '../../src/secrets/secret-box.js';

const key = () => randomBytes(32);

describe('secret box (AES-256-GCM keyring)', () => {
  it('seals under the first key, naming it, and opens what it sealed', () => {
    const box = createSecretBox([
      { id: 'k2', key: key() },
      { id: 'k1', key: key() },
    ]);
    const sealed = box.seal('whsec_c2VjcmV0', 'webhook:1:secret');
    expect(sealed).toMatch(/^v1:k2:[A-Za-z0-9+/]+={0,2}$/);
    expect(sealed).not.toContain('whsec_');
    expect(box.keyIdOf(sealed)).toBe('k2');
    expect(box.open(sealed, 'webhook:1:secret')).toBe('whsec_c2VjcmV0');
    // A fresh IV every time: the same secret never seals to the same value.
    expect(box.seal('whsec_c2VjcmV0', 'webhook:1:secret')).not.toBe(sealed);
  });

  it('an older key of the ring still opens what it sealed', () => {
    const old = { id: 'old', key: key() };
    const sealed = createSecretBox([old]).seal('s', 'c');
    expect(createSecretBox([{ id: 'new', key: key() }, old]).open(sealed, 'c')).toBe('s');
  });

  it('refuses, naming SECRETS_KEY(S), a missing key id, a wrong key, another context or a changed byte', () => {
    const sealed = createSecretBox([{ id: 'default', key: key() }]).seal('s', 'webhook:1:secret');
    const other = createSecretBox([{ id: 'other', key: key() }]);
    expect(() => other.open(sealed, 'webhook:1:secret')).toThrow(SecretsKeyError);
    expect(() => other.open(sealed, 'webhook:1:secret')).toThrow(/key id "default".*SECRETS_KEYS/);
    const wrong = createSecretBox([{ id: 'default', key: key() }]);
    expect(() => wrong.open(sealed, 'webhook:1:secret')).toThrow(/does not decrypt: SECRETS_KEYS/);
    const right = createSecretBox([{ id: 'default', key: Buffer.alloc(32) }]);
    const mine = right.seal('s', 'webhook:1:secret');
    expect(() => right.open(mine, 'webhook:2:secret')).toThrow(SecretsKeyError);
    const flipped = mine.slice(0, -3) + (mine.at(-3) === 'A' ? 'B' : 'A') + mine.slice(-2);
    expect(() => right.open(flipped, 'webhook:1:secret')).toThrow(SecretsKeyError);
    expect(() => right.open('whsec_plain', 'webhook:1:secret')).toThrow(SecretsKeyError);
  });

  it('parses 32 bytes of base64 (or base64url) and nothing else', () => {
    expect(parseKey(randomBytes(32).toString('base64'))).toHaveLength(32);
    expect(parseKey(randomBytes(32).toString('base64url'))).toHaveLength(32);
    expect(parseKey(randomBytes(16).toString('base64'))).toBeUndefined();
    expect(parseKey('not a key')).toBeUndefined();
  });
});
