/**
 * The keys a loaded delivery signs with, decrypted from what its webhook row holds. Decrypted
 * keys are kept in memory per stored value (a fresh IV makes every encryption a different value,
 * so a rotation or re-encryption is a new entry), so the hot path pays AES once per webhook
 * secret, not per delivery. They are never logged or returned.
 */
import type { SecretBox } from '../secrets/secret-box.js';
import { openSecret, type SecretField } from '../webhooks/webhook-secrets.js';
import { activeSecrets, signingKeyOf, type SignatureType, type SigningKey } from './signing.js';

/** A webhook's secrets as loaded with its delivery. */
export interface StoredSigningSecrets {
  webhook_id: string;
  signature_type: SignatureType;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  secret_key_id: string | null;
}

export interface SigningKeys {
  /** The keys that sign now; a SecretsKeyError when a secret does not decrypt. */
  activeKeys(webhook: StoredSigningSecrets, now: Date): SigningKey[];
}

const MAX_CACHED = 10_000;

export function createSigningKeys(box: SecretBox): SigningKeys {
  const cache = new Map<string, SigningKey>();

  const keyOf = (webhook: StoredSigningSecrets, field: SecretField, stored: string): SigningKey => {
    const cacheKey = `${webhook.signature_type}\0${webhook.webhook_id}\0${field}\0${webhook.secret_key_id}\0${stored}`;
    let key = cache.get(cacheKey);
    if (!key) {
      const plain = openSecret(box, webhook.webhook_id, field, stored, webhook.secret_key_id);
      key = signingKeyOf(webhook.signature_type, plain);
      if (cache.size >= MAX_CACHED) cache.clear();
      cache.set(cacheKey, key);
    }
    return key;
  };

  return {
    activeKeys(webhook, now) {
      const [current, previous] = activeSecrets(webhook, now);
      const keys = [keyOf(webhook, 'secret', current!)];
      if (previous !== undefined) keys.push(keyOf(webhook, 'previous_secret', previous));
      return keys;
    },
  };
}
