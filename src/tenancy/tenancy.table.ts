import type { ColumnType, Generated } from 'kysely';

/** tenant: a customer of the service, created on first use. */
export interface TenantTable {
  id: string;
  created_at: Generated<Date>;
  /** Tokens issued (`iat`) in this second or before are refused; null = none revoked. */
  tokens_valid_after: Date | null;
  /** accept: any event type; reject: only those in event_types. */
  unknown_event_types: ColumnType<'accept' | 'reject', 'accept' | 'reject' | undefined, 'accept' | 'reject'>;
  /** Moves with every change to the tenant's catalog (migration 021). */
  catalog_version: ColumnType<string, never, string>;
}

/** quota: a tenant's limits; an UPDATE in psql takes effect within seconds. */
export interface QuotaTable {
  tenant_id: string;
  max_events_per_sec: Generated<number>;
  max_concurrent_deliveries: Generated<number>;
  max_dlq_size: Generated<number>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

/** rate window: a tenant's events in the last second, as ten 100 ms slots (see event-rate-limit.ts). */
export interface EventRateWindowTable {
  tenant_id: string;
  slot_numbers: ColumnType<string[], string[] | undefined, string[]>;
  slot_counts: ColumnType<number[], number[] | undefined, number[]>;
  updated_at: Generated<Date>;
}

/** lease: a delivery whose request is in flight now (see concurrency-cap.ts). */
export interface DeliveryLeaseTable {
  delivery_id: string;
  tenant_id: string;
  worker_id: string;
  acquired_at: Generated<Date>;
}
