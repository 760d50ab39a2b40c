/**
 * Carrying a trace across the queue: ingestion stores the W3C `traceparent` of the request in
 * each job's payload, and the delivery task runs its attempt in a span that is a child of it —
 * so one trace runs from POST /events through the job to the outbound request.
 *
 * Only @opentelemetry/api here: without a started SDK (tracing off) every call is a cheap no-op
 * and `currentTraceparent()` is undefined.
 */
import {
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Span,
} from '@opentelemetry/api';

const tracer = trace.getTracer('hookrelay');

/** The W3C traceparent of the active span, if a span is active and tracing is on. */
export function currentTraceparent(): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
}

/** Trace and span id of the active span, for log lines. */
export function activeTraceIds(): { trace_id: string; span_id: string } | undefined {
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const spanContext = span.spanContext();
  if (!isSpanContextValid(spanContext)) return undefined;
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/**
 * Runs `fn` in a new span whose parent is the trace `traceparent` names (a root span when it is
 * absent or malformed). A throw marks the span as an error and is rethrown.
 */
export async function inSpanFromTraceparent<T>(
  name: string,
  traceparent: string | undefined,
  attributes: Attributes,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = traceparent ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
  return tracer.startActiveSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      span.recordException(err instanceof Error ? err : String(err));
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  });
}
