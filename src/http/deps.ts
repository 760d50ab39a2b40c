import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type pg from 'pg';
import type { DirectDispatch } from '../delivery/deliver-batch.js';

/** What every router gets from the composition root. */
export interface ApiDeps {
  config: Readonly<Config>;
  db: Db;
  pool: pg.Pool;
  logger: Logger;
  metrics: Metrics;
  jwtSecret: string;
  /** The delivery engine of this process (ROLE=all), which takes new deliveries directly. */
  dispatch?: DirectDispatch;
}
