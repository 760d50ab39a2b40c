/**
 * Prometheus metrics. Each process serves its own registry on GET /metrics. Labels never carry
 * a tenant, webhook or URL: outcome, status class, route template and the like only.
 */
import client from 'prom-client';

export interface Metrics {
  registry: client.Registry;
  eventsIngested: client.Counter<never>;
  deliveries: client.Counter<'outcome'>;
  deliveryDuration: client.Histogram<'outcome'>;
  eventToDelivery: client.Histogram<never>;
  queueDepth: client.Gauge<never>;
  oldestJobAge: client.Gauge<never>;
  dlqSize: client.Gauge<never>;
  httpDuration: client.Histogram<'method' | 'route' | 'status_class'>;
  retries: client.Counter<'attempt'>;
  ssrfBlocks: client.Counter<'stage'>;
  rateLimited: client.Counter<'limit'>;
  dlqRetries: client.Counter<'kind'>;
  dlqFull: client.Counter<never>;
  retentionDeleted: client.Counter<'table'>;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new client.Registry();
  if (options.defaultMetrics ?? true) client.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const metrics: Metrics = {
    registry,
    eventsIngested: new client.Counter({
      name: 'webhook_events_ingested_total',
      help: 'Events accepted by POST /events (committed before the 202).',
      registers,
    }),
    deliveries: new client.Counter({
      name: 'webhook_deliveries_total',
      help: 'Delivery attempts by outcome: success, failure (retry scheduled), dead (moved to the DLQ).',
      labelNames: ['outcome'],
      registers,
    }),
    deliveryDuration: new client.Histogram({
      name: 'webhook_delivery_duration_seconds',
      help: 'Duration of one outbound delivery attempt.',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    eventToDelivery: new client.Histogram({
      name: 'webhook_event_to_delivery_seconds',
      help: 'From event accepted to its first successful attempt, per delivery.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    }),
    queueDepth: new client.Gauge({
      name: 'webhook_queue_depth',
      help: 'Deliveries waiting to be sent: pending, or failed with a retry due now or later; not in flight, paused or dead.',
      registers,
    }),
    oldestJobAge: new client.Gauge({
      name: 'webhook_queue_oldest_job_age_seconds',
      help: 'Age of the oldest delivery job that is due and not yet taken.',
      registers,
    }),
    dlqSize: new client.Gauge({
      name: 'dlq_size',
      help: 'Entries in the dead-letter queue, all tenants.',
      registers,
    }),
    httpDuration: new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'API request duration by method, route template and status class.',
      labelNames: ['method', 'route', 'status_class'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    retries: new client.Counter({
      name: 'webhook_delivery_retries_total',
      help: 'Retries scheduled, by the number of the attempt that failed (1, 2, …).',
      labelNames: ['attempt'],
      registers,
    }),
    ssrfBlocks: new client.Counter({
      name: 'webhook_ssrf_blocked_total',
      help: 'Destinations refused because they are (or resolve to) a blocked address.',
      labelNames: ['stage'],
      registers,
    }),
    rateLimited: new client.Counter({
      name: 'webhook_rate_limited_total',
      help: 'Refusals by a tenant limit: events_per_sec (POST /events answered 429), concurrent_deliveries (a delivery over max_concurrent_deliveries waits its turn).',
      labelNames: ['limit'],
      registers,
    }),
    dlqRetries: new client.Counter({
      name: 'webhook_dlq_retries_total',
      help: 'Deliveries sent again in a fresh series: single or bulk (DLQ), recover, resend.',
      labelNames: ['kind'],
      registers,
    }),
    dlqFull: new client.Counter({
      name: 'webhook_dlq_full_total',
      help: 'Deliveries dead-lettered while their tenant was at max_dlq_size (each pauses its webhook).',
      registers,
    }),
    retentionDeleted: new client.Counter({
      name: 'webhook_retention_deleted_total',
      help: 'Rows the retention sweep deleted, by table (RETENTION_DAYS).',
      labelNames: ['table'],
      registers,
    }),
  };
  zeroKnownLabels(metrics);
  return metrics;
}

/**
 * Every label value we know of starts at 0, so its series exists from the first scrape: rate()
 * and increase() then see the first event too, and a panel or alert reads 0 rather than nothing.
 */
function zeroKnownLabels(metrics: Metrics): void {
  for (const outcome of ['success', 'failure', 'dead']) {
    metrics.deliveries.inc({ outcome }, 0);
    metrics.deliveryDuration.zero({ outcome });
  }
  for (const stage of ['literal', 'connect']) metrics.ssrfBlocks.inc({ stage }, 0);
  for (const limit of ['events_per_sec', 'concurrent_deliveries']) metrics.rateLimited.inc({ limit }, 0);
  for (const kind of ['single', 'bulk', 'recover', 'resend']) metrics.dlqRetries.inc({ kind }, 0);
  for (const table of ['events', 'deliveries', 'delivery_attempts', 'idempotency_keys'])
    metrics.retentionDeleted.inc({ table }, 0);
}
