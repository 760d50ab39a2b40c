/**
 * A webhook's signing secrets as stored: `secret` and `previous_secret` encrypted under one key
 * of the ring (`secret_key_id`), each bound to its row and column. A row whose `secret_key_id` is
 * null holds plain text: one written before migration 012, or by hand, until start-up (or
 * `npm run secrets:rotate`) encrypts it.
 */
import type { SecretBox } from '../secrets/secret-box.js';

export type SecretField = 'secret' | 'previous_secret';

/** What an encrypted value is bound to: its webhook and column. */
export const secretContext = (webhookId: string, field: SecretField): string =>
  `webhook:${webhookId}:${field}`;

export interface StoredSecrets {
  secret: string;
  previous_secret: string | null;
  secret_key_id: string | null;
}

/** The plain text of one stored value. Throws SecretsKeyError when it cannot be decrypted. */
export function openSecret(
  box: SecretBox,
  webhookId: string,
  field: SecretField,
  stored: string,
  keyId: string | null,
): string {
  return keyId === null ? stored : box.open(stored, secretContext(webhookId, field));
}

/** Both values of a row in plain text. */
export function openSecrets(
  box: SecretBox,
  webhookId: string,
  row: StoredSecrets,
): { secret: string; previous_secret: string | null } {
  return {
    secret: openSecret(box, webhookId, 'secret', row.secret, row.secret_key_id),
    previous_secret:
      row.previous_secret === null
        ? null
        : openSecret(box, webhookId, 'previous_secret', row.previous_secret, row.secret_key_id),
  };
}

/** Both values encrypted under the ring's current key, as the row stores them. */
export function sealSecrets(
  box: SecretBox,
  webhookId: string,
  plain: { secret: string; previous_secret: string | null },
): StoredSecrets {
  return {
    secret: box.seal(plain.secret, secretContext(webhookId, 'secret')),
    previous_secret:
      plain.previous_secret === null
        ? null
        : box.seal(plain.previous_secret, secretContext(webhookId, 'previous_secret')),
    secret_key_id: box.currentKeyId,
  };
}
