/**
 * One trace from POST /events through the job to the outbound delivery, seen by an in-memory
 * span exporter in this process. Tracing is started before the service is imported, as main.ts
 * does: the loader hook then sees `pg` and `node:http` as they are loaded and patches them
 * (vitest loads packages through Node's own loader). Nothing above the dynamic imports below may
 * load pg, koa or http.
 *
 * Each request sends its own `traceparent`, so the test knows which trace each delivery must
 * join; the two requests go at once, so they may share a group-commit transaction and must
 * still keep their traces apart. (main.ts itself, koa's router spans and OTLP export are
 * covered by tracing-main.test.ts, in a child process.)
 */
import { randomBytes } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, tracingRequested, type Tracing } from '../../src/observability/tracing.js';
// Types only (erased): the modules themselves are imported after tracing has started.
import type * as ProcessHelpers from '../helpers/process.js';
import type * as ReceiverHelpers from '../helpers/receiver.js';
import type * as ServiceHelpers from '../helpers/service.js';

const exporter = new InMemorySpanExporter();
let tracing: Tracing | undefined;
let helpers: {
  service: typeof ServiceHelpers;
  receiver: typeof ReceiverHelpers;
  process: typeof ProcessHelpers;
};

beforeAll(async () => {
  tracing = await startTracing({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  helpers = {
    service: await import('../helpers/service.js'),
    receiver: await import('../helpers/receiver.js'),
    process: await import('../helpers/process.js'),
  };
});
afterAll(async () => {
  await tracing?.shutdown();
});

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

function parentOf(span: ReadableSpan, spans: ReadableSpan[]): ReadableSpan | undefined {
  const parentId = span.parentSpanContext?.spanId;
  return parentId ? spans.find((s) => s.spanContext().spanId === parentId) : undefined;
}

function ancestors(span: ReadableSpan, spans: ReadableSpan[]): ReadableSpan[] {
  const chain: ReadableSpan[] = [];
  for (let p = parentOf(span, spans); p; p = parentOf(p, spans)) chain.push(p);
  return chain;
}

describe('one trace per event, from the request to the receiver', () => {
  it('holds the ingest request, the delivery job and its outbound request', async () => {
    const receiver = await helpers.receiver.startReceiver();
    const app = await helpers.service.startTestService();
    try {
      const token = await app.token('traced');
      const urlSecret = `secret-${hex(8)}`;
      const hook = await app.call('POST', '/webhooks', {
        token,
        body: { url: `${receiver.url}/hook/${urlSecret}?token=${urlSecret}`, event_types: ['*'] },
      });
      expect(hook.status).toBe(201);

      const sent = [hex(16), hex(16)].map((traceId) => ({ traceId, callerSpan: hex(8) }));
      const answers = await Promise.all(
        sent.map((trace, i) =>
          app.call('POST', '/events', {
            token,
            body: { type: `order.${i}`, payload: { i } },
            headers: { traceparent: `00-${trace.traceId}-${trace.callerSpan}-01` },
          }),
        ),
      );
      for (const answer of answers) expect(answer.status).toBe(202);
      const deliveryIds = answers.map((a) => a.body.delivery_ids[0] as string);

      // The receiver gets both; the attempt spans end just after (their last write).
      await helpers.process.waitFor(
        () => {
          const done = exporter
            .getFinishedSpans()
            .filter((s) => s.name === 'deliver webhook' && s.attributes['hookrelay.outcome'] === 'succeeded');
          return done.length >= 2 ? true : undefined;
        },
        15_000,
        'two finished delivery spans',
      );
      const spans = exporter.getFinishedSpans();

      for (const [i, trace] of sent.entries()) {
        const inTrace = spans.filter((s) => s.spanContext().traceId === trace.traceId);
        // The ingest request: the HTTP server span, a child of the caller's span.
        const ingest = inTrace.find(
          (s) => s.kind === SpanKind.SERVER && s.parentSpanContext?.spanId === trace.callerSpan,
        );
        expect(ingest, `trace ${i}: ingest request span`).toBeDefined();
        expect(String(ingest!.attributes['http.target'] ?? ingest!.attributes['url.path'])).toBe('/events');

        // The job: one attempt span for this event's delivery, below the ingest request.
        const delivery = inTrace.find((s) => s.name === 'deliver webhook');
        expect(delivery, `trace ${i}: delivery span`).toBeDefined();
        expect(delivery!.kind).toBe(SpanKind.CONSUMER);
        expect(delivery!.attributes['hookrelay.delivery_id']).toBe(deliveryIds[i]);
        expect(delivery!.attributes['hookrelay.attempt']).toBe(1);
        expect(ancestors(delivery!, spans)).toContain(ingest);

        // The outbound request: one HTTP client span, a child of the attempt.
        const outbound = inTrace.filter((s) => s.kind === SpanKind.CLIENT && s.name.startsWith('POST'));
        expect(outbound, `trace ${i}: outbound request spans`).toHaveLength(1);
        expect(parentOf(outbound[0]!, spans)).toBe(delivery);
        // The webhook URL may hold a credential: the span keeps its origin only.
        expect(outbound[0]!.attributes['url.full']).toBe(`${receiver.url}/REDACTED`);
        // The receiver was told the trace (W3C traceparent of the client span).
        const request = receiver.requests.find((r) => r.headers['webhook-id'] === deliveryIds[i]);
        expect(request?.headers.traceparent).toBe(
          `00-${trace.traceId}-${outbound[0]!.spanContext().spanId}-01`,
        );
      }
      // And the attempts' queries are in their traces too. Ends that arrive together share one
      // record statement (delivery/deliver-batch), which is traced under the attempt that opened
      // the batch: the two attempts here may share theirs, so at least one of them holds queries.
      const attempts = spans.filter((s) => s.name === 'deliver webhook');
      expect(spans.some((s) => s.name.startsWith('pg.query') && attempts.includes(parentOf(s, spans)!))).toBe(
        true,
      );
      // Nowhere in the service's spans (the receiver, in this process too, traces its own
      // requests): the URL's path and query, the payload.
      const ours = spans.filter(
        (s) => !(s.kind === SpanKind.SERVER && s.attributes['server.port'] === receiver.port),
      );
      const everything = JSON.stringify(ours.map((s) => [s.name, s.attributes, s.events]));
      expect(everything).not.toContain(urlSecret);
      expect(everything).not.toContain('"i":');
    } finally {
      await app.stop();
      await receiver.close();
    }
  });
});

describe('tracingRequested', () => {
  it('is on only when an exporter is configured, and OTEL_SDK_DISABLED wins', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' })).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' })).toBe(true);
    expect(
      tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }),
    ).toBe(false);
    expect(
      tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }),
    ).toBe(false);
  });
});
