/**
 * Dead letters as fixtures: events, `dead` deliveries and their `dlq` rows inserted with SQL in
 * one statement, the way the delivery engine leaves them after spending every retry.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/database.js';

export interface SeededDeadLetters {
  deliveryIds: string[];
  eventIds: string[];
}

export async function seedDeadLetters(
  db: Kysely<Database>,
  options: {
    tenantId: string;
    webhookId: string;
    count: number;
    /** When they died (dlq.created_at), and when their events and deliveries were created. */
    deadAt?: Date;
    createdAt?: Date;
    lastError?: string;
  },
): Promise<SeededDeadLetters> {
  const deadAt = options.deadAt ?? new Date();
  const createdAt = options.createdAt ?? new Date(deadAt.getTime() - 60_000);
  const { rows } = await sql<{ delivery_id: string; event_id: string }>`
    with new_events as (
      insert into events (id, tenant_id, type, payload, created_at)
      select gen_random_uuid(), ${options.tenantId}, 'order.created', jsonb_build_object('n', g), ${createdAt}
        from generate_series(1, ${options.count}) g
      returning id
    ), new_deliveries as (
      insert into deliveries (id, event_id, webhook_id, tenant_id, status, attempt_count, last_error,
                              last_status_code, created_at, updated_at)
      select gen_random_uuid(), e.id, ${options.webhookId}, ${options.tenantId}, 'dead', 3,
             ${options.lastError ?? 'HTTP 503: Service Unavailable'}, 503, ${createdAt}, ${deadAt}
        from new_events e
      returning id, event_id
    ), new_letters as (
      insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts, created_at)
      select d.id, ${options.tenantId}, ${options.webhookId}, d.event_id,
             ${options.lastError ?? 'HTTP 503: Service Unavailable'}, 3, ${deadAt}
        from new_deliveries d
      returning delivery_id, event_id
    )
    select delivery_id, event_id from new_letters
  `.execute(db);
  return { deliveryIds: rows.map((r) => r.delivery_id), eventIds: rows.map((r) => r.event_id) };
}

/** Sets one tenant limit directly in the `quotas` table (the tenant must exist). */
export async function setQuota(
  db: Kysely<Database>,
  tenantId: string,
  limits: Partial<Record<'max_events_per_sec' | 'max_concurrent_deliveries' | 'max_dlq_size', number>>,
): Promise<void> {
  await db.updateTable('quotas').set(limits).where('tenant_id', '=', tenantId).execute();
}
