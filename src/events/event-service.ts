/** Reading events and deliveries: GET /events, GET /events/:id, GET /deliveries/:id. */
import { tenantFilter, type Principal } from '../api/auth.js';
import { objectScope } from '../api/tenant-scope.js';
import { listAnswer, type ListAnswer } from '../api/list-answer.js';
import type { Db } from '../db/database.js';
import { notFound } from '../errors.js';
import {
  attemptsOfDelivery,
  deliveriesOfEvent,
  findDelivery,
  findEvent,
  listEvents,
  type AttemptRow,
  type DeliveryRow,
  type EventSummaryRow,
} from './event-repository.js';
import type { ListEventsQuery } from './event-schemas.js';

const iso = (value: Date | null): string | null => (value === null ? null : value.toISOString());

export type EventSummaryView = ReturnType<typeof toEventSummary>;
export type DeliveryView = ReturnType<typeof toDeliveryView>;

function toEventSummary(row: EventSummaryRow) {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    type: row.type,
    idempotency_key: row.idempotency_key,
    created_at: row.created_at.toISOString(),
  };
}

function toDeliveryView(row: DeliveryRow) {
  return {
    id: row.id,
    event_id: row.event_id,
    webhook_id: row.webhook_id,
    tenant_id: row.tenant_id,
    status: row.status,
    attempt_count: row.attempt_count,
    next_attempt_at: iso(row.next_attempt_at),
    last_error: row.last_error,
    last_status_code: row.last_status_code,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    succeeded_at: iso(row.succeeded_at),
  };
}

function toAttemptView(row: AttemptRow) {
  return {
    attempt_number: row.attempt_number,
    attempted_at: row.attempted_at.toISOString(),
    status_code: row.status_code,
    error: row.error,
    duration_ms: row.duration_ms,
    response_body: row.response_body,
  };
}

export function createEventService(deps: { db: Db }) {
  const { db } = deps;
  return {
    async list(principal: Principal, query: ListEventsQuery): Promise<ListAnswer<EventSummaryView>> {
      const { rows, total } = await listEvents(db, {
        tenantId: tenantFilter(principal, query.tenant_id),
        type: query.type,
        since: query.since,
        limit: query.limit,
        offset: query.offset,
      });
      return listAnswer(rows.map(toEventSummary), total, query);
    },

    async get(principal: Principal, id: string, tenantId?: string) {
      const event = await findEvent(db, id, objectScope(principal, tenantId));
      if (!event) throw notFound('Event');
      const deliveries = await deliveriesOfEvent(db, event.id);
      return { ...toEventSummary(event), payload: event.payload, deliveries: deliveries.map(toDeliveryView) };
    },

    async getDelivery(principal: Principal, id: string, tenantId?: string) {
      const delivery = await findDelivery(db, id, objectScope(principal, tenantId));
      if (!delivery) throw notFound('Delivery');
      const attempts = await attemptsOfDelivery(db, delivery.id);
      return { ...toDeliveryView(delivery), attempts: attempts.map(toAttemptView) };
    },
  };
}
