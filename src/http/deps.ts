import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { SecretBox } from '../secrets/secret-box.js';

/** What every feature's routes get from the composition root. */
export interface RouteDeps {
  config: Readonly<Config>;
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  metrics: Metrics;
  /** HS256 keys for API tokens: the first signs, any verifies (JWT_SECRETS). */
  jwtSecrets: readonly string[];
  /** Encrypts and decrypts webhook signing secrets (SECRETS_KEYS). */
  secrets: SecretBox;
}
