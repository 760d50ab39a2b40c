/**
 * `npm run secrets:rotate` (in the image: `node dist/webhooks/rotate-secrets-cli.js`): encrypts
 * every webhook's secrets anew under the first key of SECRETS_KEYS, in batches, while the service
 * runs. Then no row needs the older keys, and they can leave the ring (docs/runbook.md).
 */
import { ConfigError, parseConfig } from '../config.js';
import { createDatabase } from '../db/database.js';
import { startEmbeddedPostgres } from '../db/embedded-postgres.js';
import { loadSecretBox } from '../secrets/keyring.js';
import { checkSecretsKeys, sealSecrets } from './secrets-at-rest.js';
import { secretsByKeyId } from './webhook-repository.js';

let config;
try {
  config = parseConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(2);
}
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: config.dataDir });
const database = createDatabase(config.databaseUrl ?? embedded!.connectionString, { max: 2 });
let failed = false;
try {
  const box = await loadSecretBox(config);
  await checkSecretsKeys(database.db, box);
  const sealed = await sealSecrets(database.db, box, { everything: true });
  const counts = (await secretsByKeyId(database.db))
    .map((row) => `${row.secret_key_id ?? '(plain text)'}: ${row.rows}`)
    .join(', ');
  process.stdout.write(
    `re-encrypted ${sealed} webhook(s) under key id "${box.currentKeyId}"; webhooks per key id now: ${counts || 'none'}\n`,
  );
} catch (err) {
  failed = true;
  process.stderr.write(`secrets:rotate failed: ${err instanceof Error ? err.message : String(err)}\n`);
} finally {
  await database.close();
  // A server the running service uses stays up.
  if (embedded && !embedded.adopted) await embedded.stop();
}
process.exit(failed ? 1 : 0);
