import type { ColumnType, Generated } from 'kysely';

/** event: something a tenant's app reported, accepted (committed) before the 202. */
export interface EventTable {
  id: string;
  tenant_id: string;
  type: string;
  payload: ColumnType<Record<string, unknown>, string, string>;
  idempotency_key: string | null;
  created_at: Generated<Date>;
}

/** idempotency key: the first answer to a POST /events with a given Idempotency-Key, for 24 h. */
export interface IdempotencyKeyTable {
  tenant_id: string;
  key: string;
  event_id: string;
  response: ColumnType<Record<string, unknown>, string, string>;
  created_at: Generated<Date>;
}
