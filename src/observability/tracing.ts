/**
 * OpenTelemetry tracing: the SDK with http, koa and pg instrumentation, started by main.ts
 * BEFORE the rest of the service is imported (main.ts imports service.js dynamically after this
 * has run). The code is ESM, so patching `koa`, `pg` and `node:http` as they are imported needs
 * the import-in-the-middle loader hook, registered here with `module.register`; CommonJS
 * `require`s inside those packages are patched by require-in-the-middle as usual. `node:http`
 * and `node:https` are patched through `require` only (see below).
 *
 * Spans are exported only when asked for with the standard variables: OTEL_EXPORTER_OTLP_ENDPOINT
 * (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), or OTEL_TRACES_EXPORTER (`otlp`, `console`, `zipkin`).
 * Otherwise nothing is started at all — no loader hook, no patching, no SDK loaded — so tracing
 * costs nothing when it is off. OTEL_SDK_DISABLED=true turns it off whatever else is set.
 * Only traces: the SDK's own metrics and logs pipelines stay off (metrics are prom-client's,
 * logs are JSON lines on stdout).
 */
import module from 'node:module';
import type { IncomingMessage } from 'node:http';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';

type Env = Record<string, string | undefined>;

export interface Tracing {
  /** Flushes spans not yet exported and stops the SDK. */
  shutdown(): Promise<void>;
}

const isSet = (value: string | undefined): boolean => value !== undefined && value.trim() !== '';

/** True when the environment asks for spans to be exported somewhere. */
export function tracingRequested(env: Env = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (exporters.length > 0) return !exporters.every((name) => name === 'none');
  return isSet(env.OTEL_EXPORTER_OTLP_ENDPOINT) || isSet(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Scrapes and probes are not worth a trace each (Prometheus alone asks once a second). */
const UNTRACED_PATHS = new Set(['/metrics', '/health']);

let started = false;

/**
 * Whether this process traces: then deliveries send on the event loop, where the undici
 * instrumentation gives each request its client span and the receiver its `traceparent`
 * (delivery/worker.ts), not on the HTTP thread, which the instrumentation does not reach.
 */
export const tracingStarted = (): boolean => started;

export interface StartTracingOptions {
  env?: Env;
  /** Where spans go instead of the exporters the environment names (tests: an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
}

/**
 * Starts tracing when the environment asks for it (or `spanProcessors` are given); returns
 * undefined, having done nothing, otherwise. Call it before importing anything it instruments.
 */
export async function startTracing(options: StartTracingOptions = {}): Promise<Tracing | undefined> {
  const env = options.env ?? process.env;
  if (!options.spanProcessors && !tracingRequested(env)) return undefined;

  // First, so that every module imported from here on passes through the hook.
  // Except `node:http(s)`: patched through `import` as well as through `require`, each outbound
  // request would get two nested client spans (opentelemetry-js issue 6428). They are patched
  // once, through `require` (below), on the module object that `import http from 'node:http'`
  // also gives.
  module.register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, {
    data: { exclude: [/^(node:)?https?$/] },
  });

  const [
    { ClientRequest },
    { NodeSDK },
    { HttpInstrumentation },
    { KoaInstrumentation, KoaLayerType },
    { PgInstrumentation },
    { UndiciInstrumentation },
  ] = await Promise.all([
    import('node:http'),
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-koa'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-undici'),
  ]);

  const sdk = new NodeSDK({
    ...(isSet(env.OTEL_SERVICE_NAME) ? {} : { serviceName: 'hookrelay' }),
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request: IncomingMessage) =>
          UNTRACED_PATHS.has((request.url ?? '').split('?')[0] ?? ''),
        // Outbound requests are traced inside a delivery's span only (not the OTLP export itself,
        // which suppresses tracing anyway, nor anything else without a parent).
        requireParentforOutgoingSpans: true,
        // A webhook URL may hold a credential in its path or query (many receivers work so):
        // an outbound span keeps the origin only. The delivery span names the delivery.
        requestHook: (span, request) => {
          if (!(request instanceof ClientRequest)) return;
          const host = String(request.getHeader('host') ?? request.host);
          span.setAttribute('url.full', `${request.protocol}//${host}/REDACTED`);
        },
      }),
      // Deliveries go out through undici: one client span per attempt, inside its delivery's
      // span, with the origin only (a webhook URL may hold a credential in its path or query).
      new UndiciInstrumentation({
        requireParentforSpans: true,
        requestHook: (span, request) => {
          span.setAttributes({
            'url.full': `${request.origin}/REDACTED`,
            'url.path': '/REDACTED',
            'url.query': '',
          });
        },
      }),
      // Router spans only: one span per middleware function would bury the ones that matter.
      new KoaInstrumentation({ ignoreLayersType: [KoaLayerType.MIDDLEWARE] }),
      // Queries inside a request or a delivery only: graphile-worker polls every second.
      // Parameter values (payloads, secrets) are never recorded: enhancedDatabaseReporting is off.
      new PgInstrumentation({ requireParentSpan: true, ignoreConnectSpans: true }),
    ],
  });
  sdk.start();
  started = true;
  // The `require` that patches node:http(s), whoever else loads them first.
  const require = module.createRequire(import.meta.url);
  require('node:http');
  require('node:https');
  return { shutdown: () => sdk.shutdown() };
}
