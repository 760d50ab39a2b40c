/**
 * Dead letters. A delivery moves here when its retries are spent or its destination is refused;
 * the caller passes its transaction so the DLQ row commits with the delivery's final state.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

export interface DeadLetter {
  deliveryId: string;
  tenantId: string;
  webhookId: string;
  eventId: string;
  lastError: string;
  /** Attempts made in the series that ended here. */
  attempts: number;
}

/**
 * One row per delivery (the primary key): a delivery that dies again after a DLQ retry
 * refreshes its row instead of adding a second one.
 */
export async function insertDeadLetter(db: Kysely<Database>, letter: DeadLetter): Promise<void> {
  await sql`
    insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts)
    values (
      ${letter.deliveryId}, ${letter.tenantId}, ${letter.webhookId}, ${letter.eventId},
      ${letter.lastError}, ${letter.attempts}
    )
    on conflict (delivery_id) do update
      set last_error = excluded.last_error, attempts = excluded.attempts, created_at = now()
  `.execute(db);
}
