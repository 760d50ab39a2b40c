/**
 * The read side of `deliveries` and `delivery_attempts`: what the API shows. `tenantId`
 * undefined means "any tenant" (an admin).
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database } from '../db/database.js';
import type { DeliveryAttemptTable, DeliveryTable } from './delivery.table.js';

export type DeliveryRow = Selectable<DeliveryTable>;
export type AttemptRow = Omit<Selectable<DeliveryAttemptTable>, 'id' | 'response_headers' | 'delivery_id'>;

export async function deliveriesOfEvent(db: Kysely<Database>, eventId: string): Promise<DeliveryRow[]> {
  return db
    .selectFrom('deliveries')
    .selectAll()
    .where('event_id', '=', eventId)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

export async function findDelivery(
  db: Kysely<Database>,
  id: string,
  tenantId: string | undefined,
): Promise<DeliveryRow | undefined> {
  let query = db.selectFrom('deliveries').selectAll().where('id', '=', id);
  if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
  return query.executeTakeFirst();
}

/** Every attempt of the delivery, in time order. */
export async function attemptsOfDelivery(db: Kysely<Database>, deliveryId: string): Promise<AttemptRow[]> {
  return db
    .selectFrom('delivery_attempts')
    .select(['attempt_number', 'attempted_at', 'status_code', 'error', 'duration_ms', 'response_body'])
    .where('delivery_id', '=', deliveryId)
    .orderBy('attempted_at')
    .orderBy('id')
    .execute();
}
