import type pg from 'pg';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

/** What every feature's routes get from the composition root. */
export interface RouteDeps {
  config: Readonly<Config>;
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  metrics: Metrics;
  jwtSecret: string;
}
