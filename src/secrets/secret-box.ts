/**
 * Secrets at rest: AES-256-GCM under a keyring (SECRETS_KEYS, or SECRETS_KEY alone as the key
 * `default`). The first key encrypts; every key decrypts. A sealed value names its key:
 *
 *   v1:<key id>:<base64 of 12-byte IV ‖ 16-byte tag ‖ ciphertext>
 *
 * Each value is bound to where it is kept (`context`, e.g. `webhook:<id>:secret`, as GCM's
 * additional data): a ciphertext copied into another row or column does not decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface SecretsKey {
  /** Names the key in sealed values and in `webhooks.secret_key_id`. */
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

/** A key id, as SECRETS_KEYS writes it. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9_.-]{1,32}$/;
/** SECRETS_KEY's id, and that of the development key kept in DATA_DIR. */
export const DEFAULT_KEY_ID = 'default';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A value that cannot be decrypted with the keys this process has; the message says which variable to fix. */
export class SecretsKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretsKeyError';
  }
}

export interface SecretBox {
  /** The key that encrypts: the first of the ring. */
  readonly currentKeyId: string;
  readonly keyIds: readonly string[];
  seal(plaintext: string, context: string): string;
  /** The plain text; a SecretsKeyError when the key is missing or is not the one that sealed it. */
  open(sealed: string, context: string): string;
  /** The key id a sealed value names (undefined if it is not a sealed value). */
  keyIdOf(sealed: string): string | undefined;
}

export function createSecretBox(keys: readonly SecretsKey[]): SecretBox {
  if (keys.length === 0) throw new Error('a secret box needs at least one key');
  const byId = new Map(keys.map((k) => [k.id, k.key]));
  const current = keys[0]!;

  const keyIdOf = (sealed: string): string | undefined => {
    const parts = sealed.split(':');
    return parts.length === 3 && parts[0] === VERSION ? parts[1] : undefined;
  };

  return {
    currentKeyId: current.id,
    keyIds: keys.map((k) => k.id),
    keyIdOf,

    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.key, iv);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const sealed = Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64');
      return `${VERSION}:${current.id}:${sealed}`;
    },

    open(sealed, context) {
      const keyId = keyIdOf(sealed);
      if (keyId === undefined) throw new SecretsKeyError('The stored secret is not an encrypted value.');
      const key = byId.get(keyId);
      if (!key) {
        throw new SecretsKeyError(
          `A secret is encrypted under key id "${keyId}", which SECRETS_KEYS (or SECRETS_KEY) does not hold.`,
        );
      }
      const bytes = Buffer.from(sealed.slice(VERSION.length + keyId.length + 2), 'base64');
      try {
        if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error('too short');
        const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
        return Buffer.concat([
          decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)),
          decipher.final(),
        ]).toString('utf8');
      } catch {
        throw new SecretsKeyError(
          `A secret encrypted under key id "${keyId}" does not decrypt: SECRETS_KEYS (or SECRETS_KEY) holds another key under that id.`,
        );
      }
    },
  };
}

/** `SECRETS_KEY`'s value: 32 bytes in base64. Undefined when it is not that. */
export function parseKey(raw: string): Buffer | undefined {
  const text = raw.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return undefined;
  const key = Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
  return key.length === 32 ? key : undefined;
}

/** A new key, as SECRETS_KEY takes it (`openssl rand -base64 32` does the same). */
export function generateKeyText(): string {
  return randomBytes(32).toString('base64');
}
