/**
 * The service's own events, under the reserved prefix `hookrelay.`: stored in the tenant's
 * stream by `emit_operational()` (migration 021) in the transaction of the change that causes
 * them, and delivered like any event to the tenant's webhooks that subscribe to them
 * (`event_types: ["hookrelay.*"]`). A tenant cannot send them (400). They never cause more of
 * themselves: a dead delivery of a `hookrelay.` event emits no `hookrelay.delivery.dead`.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/database.js';

export const OPERATIONAL_PREFIX = 'hookrelay.';

export const isOperationalType = (type: string): boolean => type.startsWith(OPERATIONAL_PREFIX);

const uuid = { type: 'string', format: 'uuid' } as const;
const text = { type: 'string' } as const;
const time = { type: 'string', format: 'date-time' } as const;

/** Each operational event type, what it means and its payload's JSON Schema (the catalog's built-ins). */
export const OPERATIONAL_EVENT_TYPES = {
  'hookrelay.webhook.disabled': {
    description:
      'A webhook stopped receiving events: 410 Gone from the endpoint, failing continuously, its dead-letter queue full, or disabled by someone. Its deliveries wait as paused until it is enabled.',
    schema: {
      type: 'object',
      required: ['webhook_id', 'url', 'reason', 'disabled_at'],
      properties: {
        webhook_id: uuid,
        url: text,
        reason: {
          ...text,
          description:
            'e.g. "410 Gone from endpoint", "failing continuously since …", "disabled by acme:tenant".',
        },
        disabled_at: time,
      },
    },
  },
  'hookrelay.webhook.enabled': {
    description: 'A disabled webhook was enabled again; the deliveries that waited are sent.',
    schema: {
      type: 'object',
      required: ['webhook_id', 'url', 'resumed_deliveries'],
      properties: { webhook_id: uuid, url: text, resumed_deliveries: { type: 'integer', minimum: 0 } },
    },
  },
  'hookrelay.delivery.dead': {
    description: 'A delivery spent its retries (or could not be sent) and is in the dead-letter queue.',
    schema: {
      type: 'object',
      required: ['delivery_id', 'event_id', 'webhook_id', 'last_error', 'attempts'],
      properties: {
        delivery_id: uuid,
        event_id: uuid,
        webhook_id: uuid,
        event_type: text,
        last_error: text,
        attempts: { type: 'integer', minimum: 1 },
      },
    },
  },
  'hookrelay.dlq.full': {
    description:
      "The tenant's dead-letter queue reached max_dlq_size: the webhook whose delivery filled it is disabled (its deliveries wait as paused) until it is enabled, after the DLQ is replayed or emptied.",
    schema: {
      type: 'object',
      required: ['webhook_id', 'max_dlq_size', 'delivery_id'],
      properties: { webhook_id: uuid, delivery_id: uuid, max_dlq_size: { type: 'integer', minimum: 0 } },
    },
  },
  'hookrelay.webhook.secret_rotated': {
    description:
      "A webhook's signing secret (or key pair) was rotated; the previous one also signs until previous_secret_expires_at.",
    schema: {
      type: 'object',
      required: ['webhook_id', 'previous_secret_expires_at'],
      properties: { webhook_id: uuid, previous_secret_expires_at: { ...time, nullable: true } },
    },
  },
} as const;

export type OperationalEventType = keyof typeof OPERATIONAL_EVENT_TYPES;

export interface OperationalEvent {
  tenantId: string;
  type: OperationalEventType;
  payload: Record<string, unknown>;
}

/** Stores an operational event and its deliveries in the caller's transaction; its id. */
export async function emitOperationalEvent(
  db: Kysely<Database>,
  tenantId: string,
  type: OperationalEventType,
  payload: Record<string, unknown>,
): Promise<string> {
  return (await emitOperationalEvents(db, [{ tenantId, type, payload }]))[0]!;
}

/**
 * Stores operational events and their deliveries in the caller's transaction, in the order
 * given, in one statement however many; their ids in that order.
 */
export async function emitOperationalEvents(
  db: Kysely<Database>,
  events: readonly OperationalEvent[],
): Promise<string[]> {
  if (events.length === 0) return [];
  const rows = events.map((e, ord) => ({ ord, tenant_id: e.tenantId, type: e.type, payload: e.payload }));
  const { rows: ids } = await sql<{ id: string }>`
    select emit_operational(e.tenant_id, e.type, e.payload) as id
      from json_to_recordset(${JSON.stringify(rows)}::json) as e(ord int, tenant_id text, type text, payload jsonb)
     order by e.ord
  `.execute(db);
  return ids.map((r) => r.id);
}
