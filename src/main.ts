/**
 * Entry point: `node dist/main.js` (and `npm start`). Tracing starts first, and everything else
 * is imported only after it (dynamic imports below): the instrumentation patches `koa`, `pg` and
 * `node:http` as they are loaded, and cannot patch what is loaded before it.
 */
import v8 from 'node:v8';
import type { Config } from './config.js';
import { startTracing } from './observability/tracing.js';

/**
 * V8 lets a heap's old generation grow to up to 4× what its last full collection left live
 * before it collects again. Under load much of what reaches the old generation is short-lived
 * (requests and attempts in flight), so at their peaks the event loop's heap and the HTTP
 * thread's each carried 60–100 MB of garbage. 3× keeps a backlog drain's peak RSS at 260–270 MB
 * instead of 300–315, at a cost in throughput within the spread of our runs
 * (docs/capacity-planning.md). V8 reads the flag at every collection, so set here it holds for
 * both heaps.
 */
const HEAP_GROWING_PERCENT = 200;
v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);

const tracing = await startTracing().catch((err: Error) => {
  // Traces are an aid, not a duty: a bad OTEL_* setting must not keep the service down.
  process.stderr.write(`Tracing not started: ${err.message}\n`);
  return undefined;
});

const { ConfigError, parseConfig } = await import('./config.js');
const { signToken } = await import('./http/auth.js');
const { startService } = await import('./service.js');
const { createPortalLink } = await import('./portal/portal-links.js');

let config: Readonly<Config>;
try {
  config = parseConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const service = await startService(config).catch((err: Error) => {
  process.stderr.write(`Start-up failed: ${err.message}\n`);
  process.exit(1);
});

if (!config.isProduction && service.url) {
  const adminToken = await signToken(service.jwtSecret, { tenantId: 'admin', role: 'admin' });
  const portalLink = await createPortalLink(service.database.db, 'acme');
  // On stderr, once, outside the JSON log lines on stdout: logs never hold a token.
  process.stderr.write(
    [
      '',
      `  Webhook service ready at ${service.url}  (role ${config.role}, ${config.numWorkers} delivery jobs at once, up to ${config.maxInFlight} requests in flight)`,
      `  Admin token (development):`,
      `    ${adminToken}`,
      `  Tenant token:  npm run --silent token -- --tenant acme`,
      `  Portal for tenant acme (one-time link, 10 min):`,
      `    ${service.url}${portalLink.path}`,
      '',
      '',
    ].join('\n'),
  );
}

// graphile-worker 0.17 can leave a rejected promise unheard when its local queue is released
// while the database is away (its pool shuts down after a lost connection, then fails to return
// the queued jobs). The delivery worker replaces such a runner and releases its jobs
// (src/delivery/worker.ts), so that rejection is logged, not fatal. Any other unhandled
// rejection still ends the process, as it would without this handler.
process.on('unhandledRejection', (reason) => {
  const err = reason instanceof Error ? reason : new Error(String(reason));
  if (err.stack?.includes('graphile-worker')) {
    service.logger.error('graphile-worker left a rejection unhandled; its runner is replaced', {
      err: err.message,
    });
    return;
  }
  service.logger.error('unhandled promise rejection; exiting', { err: err.message, stack: err.stack });
  process.exit(1);
});

let stoppingSince: number | undefined;
const stop = (signal: string) => {
  if (stoppingSince !== undefined) {
    // A wrapper (npm, tsx) may pass the same signal on again at once; only a later one means "now".
    if (Date.now() - stoppingSince < 2000) return;
    service.logger.warn('second signal: exiting now', { signal });
    process.exit(1);
  }
  stoppingSince = Date.now();
  service.logger.info('stopping', { signal });
  const deadline = setTimeout(() => {
    service.logger.error('graceful stop took too long; exiting');
    process.exit(1);
  }, config.shutdownTimeoutMs + 30_000);
  deadline.unref();
  service
    .stop()
    .then(async () => {
      // Spans still batched in memory are sent before the process ends.
      await tracing?.shutdown().catch(() => undefined);
      service.logger.info('stopped', { signal, after_ms: Date.now() - stoppingSince! });
      // stdout to a pipe is written asynchronously: let the last lines out before exiting.
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    })
    .then(
      () => process.exit(0),
      (err: unknown) => {
        service.logger.error('stop failed', { err: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
