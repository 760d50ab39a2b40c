/**
 * Start-up's part in keeping signing secrets encrypted (SQL has no key, so migrations cannot):
 * `checkSecretsKeys` refuses a keyring that cannot decrypt what the table holds, and
 * `sealSecrets` encrypts rows in batches — at start-up the plain-text ones, for
 * `npm run secrets:rotate` every row not under the ring's first key.
 */
import type { Db } from '../db/database.js';
import { SecretsKeyError, type SecretBox } from '../secrets/secret-box.js';
import {
  lockSecretsToSeal,
  secretsByKeyId,
  storeSealedSecrets,
  type StoredSecretsRow,
} from './webhook-repository.js';
import { openSecrets, sealSecrets as sealRow } from './webhook-secrets.js';

/** Rows sealed per transaction. */
const BATCH = 500;

/**
 * Decrypts one row per key id in use. A key id the ring lacks, or a key that is not the one that
 * encrypted them, is a SecretsKeyError naming SECRETS_KEY(S): the service must not start and
 * sign with garbage.
 */
export async function checkSecretsKeys(db: Db, box: SecretBox): Promise<void> {
  for (const row of await secretsByKeyId(db)) {
    if (row.secret_key_id === null) continue;
    if (!box.keyIds.includes(row.secret_key_id)) {
      throw new SecretsKeyError(
        `${row.rows} webhook(s) have secrets encrypted under key id "${row.secret_key_id}", which SECRETS_KEYS (or SECRETS_KEY) does not hold: add it to SECRETS_KEYS.`,
      );
    }
    try {
      openSecrets(box, row.id, row);
    } catch {
      throw new SecretsKeyError(
        `Webhook secrets encrypted under key id "${row.secret_key_id}" do not decrypt: SECRETS_KEYS (or SECRETS_KEY) holds another key under that id.`,
      );
    }
  }
}

/**
 * Encrypts under the ring's first key, in transactions of up to 500 rows, the rows still in
 * plain text — and with `everything`, every row under another key too. Rows another process is
 * sealing are skipped (and sealed by it). Answers how many rows it sealed.
 */
export async function sealSecrets(
  db: Db,
  box: SecretBox,
  options: { everything?: boolean } = {},
): Promise<number> {
  let sealed = 0;
  for (;;) {
    const count = await db.transaction().execute(async (trx) => {
      const rows = await lockSecretsToSeal(trx, {
        ...(options.everything ? { notUnder: box.currentKeyId } : {}),
        limit: BATCH,
      });
      const resealed: StoredSecretsRow[] = rows.map((row) => ({
        id: row.id,
        ...sealRow(box, row.id, openSecrets(box, row.id, row)),
      }));
      await storeSealedSecrets(trx, resealed);
      return rows.length;
    });
    sealed += count;
    if (count < BATCH) return sealed;
  }
}
