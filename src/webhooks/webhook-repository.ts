/**
 * The only place with queries on `webhooks`. Every function takes the database or a
 * transaction; `tenantId` undefined means "any tenant" (an admin looking up by id).
 */
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Database } from '../db/database.js';
import { pageWithTotal } from '../db/page.js';
import type { WebhookOrdering, WebhookTable } from './webhook.table.js';

export type WebhookRow = Selectable<WebhookTable>;

export interface NewWebhook {
  id: string;
  tenantId: string;
  url: string;
  eventTypes: string[];
  secret: string;
  description: string | null;
  filter: string | null;
  ordering: WebhookOrdering;
  timeoutMs: number | null;
  enabled: boolean;
  disabledReason: string | null;
}

export async function insertWebhook(db: Kysely<Database>, webhook: NewWebhook): Promise<WebhookRow> {
  return db
    .insertInto('webhooks')
    .values({
      id: webhook.id,
      tenant_id: webhook.tenantId,
      url: webhook.url,
      event_types: webhook.eventTypes,
      secret: webhook.secret,
      description: webhook.description,
      filter: webhook.filter,
      ordering: webhook.ordering,
      timeout_ms: webhook.timeoutMs,
      enabled: webhook.enabled,
      disabled_reason: webhook.disabledReason,
      disabled_at: webhook.enabled ? null : sql<Date>`now()`,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** The webhook; inside a transaction `lock` keeps others from changing it until commit. */
export async function findWebhook(
  db: Kysely<Database>,
  id: string,
  tenantId: string | undefined,
  options: { lock?: 'update' | 'no key update' } = {},
): Promise<WebhookRow | undefined> {
  let query = db.selectFrom('webhooks').selectAll().where('id', '=', id);
  if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
  if (options.lock === 'update') query = query.forUpdate();
  else if (options.lock === 'no key update') query = query.forNoKeyUpdate();
  return query.executeTakeFirst();
}

export interface WebhookFilter {
  tenantId: string | undefined;
  enabled: boolean | undefined;
  limit: number;
  offset: number;
}

/** Newest first. */
export async function listWebhooks(
  db: Kysely<Database>,
  filter: WebhookFilter,
): Promise<{ rows: WebhookRow[]; total: number }> {
  let base = db.selectFrom('webhooks');
  if (filter.tenantId !== undefined) base = base.where('tenant_id', '=', filter.tenantId);
  if (filter.enabled !== undefined) base = base.where('enabled', '=', filter.enabled);
  return pageWithTotal(
    base,
    (q) => q.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc'),
    filter,
  );
}

export async function updateWebhook(
  db: Kysely<Database>,
  id: string,
  changes: Updateable<WebhookTable>,
): Promise<WebhookRow> {
  return db
    .updateTable('webhooks')
    .set({ ...changes, updated_at: sql<Date>`now()` })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/**
 * The old secret keeps signing, as a second signature, until 24 h from now. A rotation within
 * those 24 h drops the oldest secret: only one previous secret is kept.
 */
export async function rotateWebhookSecret(
  db: Kysely<Database>,
  id: string,
  newSecret: string,
): Promise<WebhookRow> {
  return db
    .updateTable('webhooks')
    .set({
      previous_secret: sql<string>`secret`,
      previous_secret_expires_at: sql<Date>`now() + interval '24 hours'`,
      secret: newSecret,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

/** Deletes the webhook; its deliveries, attempts and dead letters go with it (on delete cascade). */
export async function deleteWebhook(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('webhooks').where('id', '=', id).execute();
}
