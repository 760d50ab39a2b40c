import type { Generated } from 'kysely';

/** dead letter: a delivery whose retries are spent or whose destination was refused. */
export interface DlqTable {
  delivery_id: string;
  tenant_id: string;
  webhook_id: string;
  event_id: string;
  last_error: string;
  attempts: number;
  created_at: Generated<Date>;
}
