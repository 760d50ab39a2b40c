/**
 * Tracing as production starts it: `src/main.ts` in a child process (tsx), which starts the SDK
 * before importing the service, with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a small OTLP/HTTP
 * collector in this test (JSON encoding, so the test can read it). The batch processor is told
 * to wait a minute, so the spans arrive only because a graceful stop flushes them.
 *
 * The trace of one POST /events holds the HTTP server span, koa's router span, its queries, the
 * delivery attempt and the outbound request; the request's and the attempt's log lines carry
 * its trace_id and their own span_id.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../../src/http/auth.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { spawnService, waitFor, type ServiceProcess } from '../helpers/process.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { TEST_SECRETS_KEY } from '../helpers/service.js';

const JWT_SECRET = 'tracing-main-secret-0123456789';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface CollectedSpan {
  scope: string;
  service: string | undefined;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean | undefined>;
}

/** OTLP span kinds (the protobuf enum, used by the JSON encoding too). */
const OTLP_KIND = { SERVER: 2, CLIENT: 3, CONSUMER: 5 } as const;

const plain = (value: OtlpValue | undefined) =>
  value?.stringValue ?? (value?.intValue !== undefined ? Number(value.intValue) : value?.boolValue);

async function startCollector() {
  const spans: CollectedSpan[] = [];
  const requests: { path: string; contentType: string | undefined }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', contentType: req.headers['content-type'] });
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const resourceSpans of body.resourceSpans ?? []) {
        const service = plain(
          resourceSpans.resource?.attributes?.find((a: { key: string }) => a.key === 'service.name')?.value,
        );
        for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
          for (const span of scopeSpans.spans ?? []) {
            spans.push({
              scope: scopeSpans.scope?.name,
              service: service as string | undefined,
              traceId: span.traceId,
              spanId: span.spanId,
              parentSpanId: span.parentSpanId ?? '',
              name: span.name,
              kind: span.kind,
              attributes: Object.fromEntries(
                (span.attributes ?? []).map((a: { key: string; value: OtlpValue }) => [
                  a.key,
                  plain(a.value),
                ]),
              ),
            });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('main.ts with OTLP export', () => {
  let database: TestDatabase;
  let receiver: Receiver;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let child: ServiceProcess | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    receiver = await startReceiver();
    collector = await startCollector();
  });
  afterAll(async () => {
    if (child && child.child.exitCode === null) {
      child.child.kill('SIGKILL');
      await child.exited;
    }
    await collector?.close();
    await receiver?.close();
    await database?.drop();
  });

  it('exports one trace from POST /events to the receiver, and logs carry its ids', async () => {
    child = spawnService({
      NODE_ENV: 'production',
      DATABASE_URL: database.url,
      JWT_SECRET,
      SECRETS_KEY: TEST_SECRETS_KEY,
      // The receivers here are plain http on 127.0.0.1.
      WEBHOOK_HTTPS_ONLY: 'false',
      SSRF_ALLOWLIST: '127.0.0.1/32',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '60000',
    });
    const port = await child.listening;
    const base = `http://127.0.0.1:${port}`;
    const token = await signToken(JWT_SECRET, { tenantId: 'traced', role: 'tenant' });
    const call = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(base + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, any> };
    };

    const urlSecret = `secret-${randomBytes(8).toString('hex')}`;
    const webhookUrl = `${receiver.url}/hook/${urlSecret}?token=${urlSecret}`;
    expect((await call('/webhooks', { url: webhookUrl, event_types: ['*'] })).status).toBe(201);
    const traceId = randomBytes(16).toString('hex');
    const event = await call(
      '/events',
      { type: 'order.created', payload: { n: 1 } },
      { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    );
    expect(event.status).toBe(202);
    const deliveryId = event.body.delivery_ids[0] as string;
    await waitFor(() => (receiver.requests.length > 0 ? true : undefined), 15_000, 'the delivery');
    await waitFor(
      () => (child!.output().includes('"msg":"delivery attempt"') ? true : undefined),
      10_000,
      'the attempt log line',
    );

    // Nothing exported yet (a minute's batch delay): the graceful stop must flush.
    expect(collector.spans).toHaveLength(0);
    child.child.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);

    expect(collector.requests.length).toBeGreaterThan(0);
    for (const request of collector.requests) {
      expect(request.path).toBe('/v1/traces');
      expect(request.contentType).toMatch(/^application\/json/);
    }
    const trace = collector.spans.filter((s) => s.traceId === traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    for (const span of trace) expect(span.service).toBe('hookrelay');

    const server = trace.find((s) => s.kind === OTLP_KIND.SERVER && s.scope.includes('instrumentation-http'));
    expect(server?.name).toBe('POST /events');
    const router = trace.find(
      (s) => s.scope.includes('instrumentation-koa') && s.name === 'router - /events',
    );
    expect(router, 'koa router span').toBeDefined();
    expect(trace.some((s) => s.scope.includes('instrumentation-pg') && s.name.startsWith('pg.query'))).toBe(
      true,
    );

    const delivery = trace.find((s) => s.name === 'deliver webhook');
    expect(delivery?.kind).toBe(OTLP_KIND.CONSUMER);
    expect(delivery?.attributes['hookrelay.delivery_id']).toBe(deliveryId);
    expect(delivery?.attributes['hookrelay.outcome']).toBe('succeeded');
    expect(byId.get(delivery!.parentSpanId)).toBe(router);
    // The outbound request: one HTTP client span, a child of the attempt, that the receiver is
    // told of; it keeps only the webhook URL's origin (the path or query may hold a credential).
    const outbound = trace.filter(
      (s) => s.kind === OTLP_KIND.CLIENT && s.scope.includes('instrumentation-undici'),
    );
    expect(outbound).toHaveLength(1);
    expect(outbound[0]!.name).toBe('POST');
    expect(outbound[0]!.parentSpanId).toBe(delivery!.spanId);
    expect(receiver.requests[0]!.headers.traceparent).toBe(`00-${traceId}-${outbound[0]!.spanId}-01`);
    expect(outbound[0]!.attributes['url.full']).toBe(`${receiver.url}/REDACTED`);
    expect(JSON.stringify(collector.spans)).not.toContain(urlSecret);

    // Scrapes and health checks are not traced.
    expect(collector.spans.some((s) => /\/(metrics|health)/.test(s.name))).toBe(false);

    const lines = child
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const requestLine = lines.find((l) => l.msg === 'request' && l.path === '/events');
    expect(requestLine?.trace_id).toBe(traceId);
    expect(byId.has(requestLine?.span_id as string)).toBe(true);
    const attemptLine = lines.find((l) => l.msg === 'delivery attempt' && l.delivery_id === deliveryId);
    expect(attemptLine?.trace_id).toBe(traceId);
    expect(attemptLine?.span_id).toBe(delivery!.spanId);
  });
});
