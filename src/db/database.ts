import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { usePreparedStatements } from './prepared-statements.js';
import type { AuditLogTable } from '../audit/audit.table.js';
import type {
  DeliveryAttemptTable,
  DeliveryTable,
  WorkerHeartbeatTable,
} from '../delivery/delivery.table.js';
import type { DlqTable } from '../dlq/dlq.table.js';
import type { EventTable, IdempotencyKeyTable } from '../events/event.table.js';
import type {
  DeliveryLeaseTable,
  EventRateWindowTable,
  QuotaTable,
  TenantTable,
} from '../tenancy/tenancy.table.js';
import type { WebhookTable } from '../webhooks/webhook.table.js';
import type { PortalLinkTable } from '../portal/portal.table.js';
import type { ServiceSettingTable } from './service-settings.js';
import type { EventTypeTable } from '../event-types/event-type.table.js';

/** The service's tables, as Kysely sees them. test/integration/schema.test.ts keeps this in step with the database. */
export interface Database {
  tenants: TenantTable;
  quotas: QuotaTable;
  webhooks: WebhookTable;
  events: EventTable;
  idempotency_keys: IdempotencyKeyTable;
  deliveries: DeliveryTable;
  delivery_attempts: DeliveryAttemptTable;
  dlq: DlqTable;
  audit_log: AuditLogTable;
  worker_heartbeats: WorkerHeartbeatTable;
  event_rate_windows: EventRateWindowTable;
  delivery_leases: DeliveryLeaseTable;
  service_settings: ServiceSettingTable;
  event_types: EventTypeTable;
  portal_links: PortalLinkTable;
}

export type Db = Kysely<Database>;

// int8 (counts, identity ids) as strings is the pg default; numeric counts we cast in SQL.
// timestamptz stays a Date.

export interface DatabaseHandle {
  db: Db;
  pool: pg.Pool;
  close(): Promise<void>;
}

export function createDatabase(connectionString: string, options: { max?: number } = {}): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 20,
    // Prepared statements run on their generic plan: planning the batch statements (a handful
    // of CTEs each) costs more than running them, and they reach rows by keys given as arrays.
    options: '-c plan_cache_mode=force_generic_plan',
    // A request must not hang while the database is away: fail fast and answer 503.
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30000,
  });
  // A client losing its connection (database restart) must not crash the process: the error
  // surfaces on the query that was using it, or the idle client is simply dropped.
  pool.on('error', () => undefined);
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    usePreparedStatements(client);
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    pool,
    async close() {
      // Kysely ends the pool only if it ever used it; the pool may have been used directly.
      await db.destroy();
      if (!pool.ended) await pool.end();
    },
  };
}
