import type { ColumnType, Generated } from 'kysely';

export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'dead' | 'paused';

/** delivery: one event to one webhook; its id is the `webhook-id` header, stable across retries. */
export interface DeliveryTable {
  id: string;
  event_id: string;
  webhook_id: string;
  tenant_id: string;
  status: Generated<DeliveryStatus>;
  /** Attempts made so far in the current series (a DLQ retry starts a new series). */
  attempt_count: Generated<number>;
  next_attempt_at: Date | null;
  last_error: string | null;
  last_status_code: number | null;
  created_at: Generated<Date>;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  succeeded_at: Date | null;
  /** Place in its FIFO webhook's order (migration 020); null for unordered webhooks. */
  fifo_seq: ColumnType<string | null, string | null | undefined, string | null>;
}

/** attempt: one outbound request made for a delivery. */
export interface DeliveryAttemptTable {
  id: Generated<string>;
  delivery_id: string;
  attempt_number: number;
  attempted_at: Generated<Date>;
  /** HTTP status; null when no answer came. */
  status_code: number | null;
  /** Null on success. */
  error: string | null;
  duration_ms: number;
  /** First 4 KiB of the response body. */
  response_body: string | null;
  response_headers: ColumnType<Record<string, string> | null, string | null, string | null>;
}

/** worker heartbeat: one row per running worker process. */
export interface WorkerHeartbeatTable {
  worker_id: string;
  hostname: string;
  pid: number;
  started_at: Generated<Date>;
  last_seen_at: Generated<Date>;
}
