/**
 * Composition root: config → database (embedded when DATABASE_URL is unset) → migrations →
 * the API and/or the delivery worker, as ROLE says → a graceful stop that undoes it in reverse.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { createApp } from './api/app.js';
import { loadJwtSecrets } from './http/auth.js';
import { answerUnparsableRequest } from './http/error-middleware.js';
import { createDatabase, type DatabaseHandle } from './db/database.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './db/embedded-postgres.js';
import { migrate } from './db/migrate.js';
import { writeServiceSettings } from './db/service-settings.js';
import { startDeliveryWorker, type DeliveryWorker } from './delivery/worker.js';
import { startAutoDisableSweep } from './webhooks/auto-disable-sweep.js';
import { startRetentionSweep } from './retention/retention-sweep.js';
import { startFifoSweep } from './delivery/fifo.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics, type Metrics } from './observability/metrics.js';
import { startMetricsServer } from './observability/metrics-server.js';
import { startQueueGauges, type QueueGauges } from './observability/queue-gauges.js';
import { loadSecretBox } from './secrets/keyring.js';
import type { SecretBox } from './secrets/secret-box.js';
import { startTokenRevocations, type TokenRevocations } from './tenancy/token-revocations.js';
import { checkSecretsKeys, sealSecrets } from './webhooks/secrets-at-rest.js';

/** How often a delivering process looks for FIFO webhooks' next deliveries that nothing carries. */
const FIFO_SWEEP_MS = 5000;

export interface Service {
  /** Base URL of the API, when this process serves it. */
  url: string | undefined;
  port: number | undefined;
  databaseUrl: string;
  /** The key new API tokens are signed with (the first of JWT_SECRETS). */
  jwtSecret: string;
  /** Every key API tokens are verified with. */
  jwtSecrets: readonly string[];
  /** The keyring webhook signing secrets are encrypted with. */
  secrets: SecretBox;
  /** Each tenant's token revocation time, when this process serves the API. */
  tokenRevocations: TokenRevocations | undefined;
  logger: Logger;
  metrics: Metrics;
  database: DatabaseHandle;
  /** The delivery worker, when this process runs one (ROLE all or worker, NUM_WORKERS > 0). */
  worker: DeliveryWorker | undefined;
  /** Port of the separate GET /metrics listener (METRICS_PORT), when there is one. */
  metricsPort: number | undefined;
  /** The database-read gauges (queue depth and age, DLQ size), refreshed every few seconds. */
  queueGauges: QueueGauges;
  /** Graceful stop: no new requests or jobs, in-flight work finishes (up to the deadline), then close. */
  stop(): Promise<void>;
}

export async function startService(
  config: Readonly<Config>,
  options: { logger?: Logger } = {},
): Promise<Service> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const metrics = createMetrics();
  const cleanups: (() => Promise<void>)[] = [];
  const runCleanups = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      await cleanup().catch((err: Error) => logger.error('stop step failed', { err: err.message }));
    }
  };

  try {
    let databaseUrl = config.databaseUrl;
    let embedded: EmbeddedPostgres | undefined;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres({
        dataDir: config.dataDir,
        log: (msg, meta) => logger.info(msg, meta),
      });
      cleanups.push(() => embedded!.stop());
      databaseUrl = embedded.connectionString;
    }

    const database = createDatabase(databaseUrl, { max: config.databasePoolSize });
    cleanups.push(() => database.close());
    const applied = await migrate(database.pool);
    if (applied.length > 0) logger.info('migrations applied', { migrations: applied });
    await writeServiceSettings(database.db, { max_payload_bytes: String(config.maxPayloadBytes) });

    const jwtSecrets = await loadJwtSecrets(config);

    // Signing secrets: refuse a keyring that cannot decrypt what is stored (never sign with
    // garbage), then encrypt what is still plain text (rows from before migration 012).
    const secrets = await loadSecretBox(config);
    await checkSecretsKeys(database.db, secrets);
    const sealed = await sealSecrets(database.db, secrets);
    if (sealed > 0)
      logger.info('webhook secrets encrypted', { webhooks: sealed, key_id: secrets.currentKeyId });

    // Observability: the gauges read from the database, and METRICS_PORT's /metrics listener
    // (how a ROLE=worker process, which has no API port, is scraped).
    const queueGauges = startQueueGauges({ db: database.db, metrics, logger });
    cleanups.push(() => queueGauges.stop());
    let metricsPort: number | undefined;
    if (config.metricsPort !== undefined) {
      const metricsServer = await startMetricsServer(metrics.registry, config.metricsPort);
      cleanups.push(() => metricsServer.close());
      metricsPort = metricsServer.port;
      logger.info('metrics listening', { port: metricsPort, path: '/metrics' });
    }

    let worker: DeliveryWorker | undefined;
    if (config.role !== 'api' && config.numWorkers > 0) {
      // Its own pool, so that deliveries never wait for the API's connections. Its writes commit
      // synchronously like everything else: a lease or a job lock that a database crash gave
      // back while its holder lives on would strand a delivery until that process stops.
      const workerDatabase = createDatabase(databaseUrl, { max: config.numWorkers + 4 });
      cleanups.push(() => workerDatabase.close());
      worker = await startDeliveryWorker({
        config,
        db: workerDatabase.db,
        pool: workerDatabase.pool,
        logger,
        metrics,
        secrets,
      });
      cleanups.push(() => worker!.stop());
    }
    if (config.role !== 'api' && config.webhookAutoDisableAfterMs > 0) {
      const sweep = startAutoDisableSweep({
        db: database.db,
        logger,
        failingForMs: config.webhookAutoDisableAfterMs,
        everyMs: config.webhookAutoDisableSweepMs,
      });
      cleanups.push(() => sweep.stop());
    }
    if (config.role !== 'api') {
      const fifo = startFifoSweep({ db: database.db, logger, everyMs: FIFO_SWEEP_MS });
      cleanups.push(() => fifo.stop());
    }
    if (config.role !== 'api' && config.retentionDays > 0) {
      const retention = startRetentionSweep({
        db: database.db,
        logger,
        metrics,
        retentionDays: config.retentionDays,
        everyMs: config.retentionSweepMs,
      });
      cleanups.push(() => retention.stop());
    }

    let url: string | undefined;
    let port: number | undefined;
    let tokenRevocations: TokenRevocations | undefined;
    if (config.role !== 'worker') {
      tokenRevocations = await startTokenRevocations({ db: database.db, databaseUrl, logger });
      cleanups.push(() => tokenRevocations!.stop());
      const app = createApp({
        config,
        db: database.db,
        pool: database.pool,
        logger,
        metrics,
        jwtSecrets,
        secrets,
        tokenRevocations,
        ...(worker ? { dispatch: worker.engine } : {}),
      });
      const server = http.createServer(app.callback());
      server.on('clientError', answerUnparsableRequest);
      server.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, resolve);
      });
      port = (server.address() as AddressInfo).port;
      url = `http://localhost:${port}`;
      cleanups.push(() => closeServer(server, config.shutdownTimeoutMs));
      logger.info('listening', { url, port, role: config.role });
    }

    return {
      url,
      port,
      databaseUrl,
      jwtSecret: jwtSecrets[0]!,
      jwtSecrets,
      secrets,
      tokenRevocations,
      logger,
      metrics,
      database,
      worker,
      metricsPort,
      queueGauges,
      stop: runCleanups,
    };
  } catch (err) {
    await runCleanups();
    throw err;
  }
}

/** Stops accepting connections, lets in-flight requests finish, and closes idle keep-alive sockets. */
async function closeServer(server: http.Server, deadlineMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), deadlineMs);
  timer.unref();
  await closed;
  clearTimeout(timer);
}
