/** Reading events: GET /events, GET /events/:id (with its deliveries). */
import { tenantFilter, type Principal, objectScope } from '../tenancy/caller.js';
import { listAnswer, type ListAnswer } from '../db/page.js';
import type { Db } from '../db/database.js';
import { notFound } from '../errors.js';
import { deliveriesOfEvent } from '../delivery/delivery-read-repository.js';
import { toDeliveryView } from '../delivery/delivery-service.js';
import { findEvent, listEvents, type EventSummaryRow } from './event-repository.js';
import type { ListEventsQuery } from './event-schemas.js';

export type EventSummaryView = ReturnType<typeof toEventSummary>;

function toEventSummary(row: EventSummaryRow) {
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    type: row.type,
    idempotency_key: row.idempotency_key,
    created_at: row.created_at.toISOString(),
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
  };
}
