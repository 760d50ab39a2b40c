/** `npm run migrate`: applies pending migrations (the embedded database when DATABASE_URL is unset). */
import { parseConfig } from '../config.js';
import { createDatabase } from './database.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';
import { migrate } from './migrate.js';

const config = parseConfig();
const embedded = config.databaseUrl ? undefined : await startEmbeddedPostgres({ dataDir: config.dataDir });
const database = createDatabase(config.databaseUrl ?? embedded!.connectionString, { max: 2 });
try {
  const applied = await migrate(database.pool);
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'schema is up to date\n');
} finally {
  await database.close();
  // A server the running service uses stays up.
  if (embedded && !embedded.adopted) await embedded.stop();
}
