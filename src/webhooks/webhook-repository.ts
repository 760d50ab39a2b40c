/**
 * The only place with queries on `webhooks`. Every function takes the database or a
 * transaction; `tenantId` undefined means "any tenant" (an admin looking up by id).
 */
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Database } from '../db/database.js';
import { pageWithTotal } from '../db/page.js';
import type { SignatureType } from '../delivery/signing.js';
import type { StoredSecrets } from './webhook-secrets.js';
import type { WebhookOrdering, WebhookTable } from './webhook.table.js';

export type WebhookRow = Selectable<WebhookTable>;

export interface NewWebhook {
  id: string;
  tenantId: string;
  url: string;
  eventTypes: string[];
  signatureType: SignatureType;
  /** Encrypted (see webhook-secrets.ts). */
  secret: string;
  secretKeyId: string;
  /** ed25519 only. */
  publicKey: string | null;
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
      signature_type: webhook.signatureType,
      secret: webhook.secret,
      secret_key_id: webhook.secretKeyId,
      public_key: webhook.publicKey,
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
 * The new secret signs from now on; the old one (given again, encrypted with the new one under
 * the same key) keeps signing, as a second signature, until 24 h from now. A rotation within
 * those 24 h drops the oldest secret: only one previous secret is kept.
 */
export async function rotateWebhookSecret(
  db: Kysely<Database>,
  id: string,
  secrets: StoredSecrets & { public_key: string | null },
): Promise<WebhookRow> {
  return db
    .updateTable('webhooks')
    .set({
      ...secrets,
      previous_secret_expires_at: sql<Date>`now() + interval '24 hours'`,
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export type StoredSecretsRow = StoredSecrets & { id: string };

/**
 * Up to `limit` rows whose secrets are plain text (`notUnder` undefined) or not under the key
 * `notUnder`, locked until the transaction ends. Rows another transaction holds are skipped: two
 * processes doing this at once take different rows.
 */
export async function lockSecretsToSeal(
  db: Kysely<Database>,
  options: { notUnder?: string; limit: number },
): Promise<StoredSecretsRow[]> {
  let query = db.selectFrom('webhooks').select(['id', 'secret', 'previous_secret', 'secret_key_id']);
  query =
    options.notUnder === undefined
      ? query.where('secret_key_id', 'is', null)
      : query.where((eb) =>
          eb.or([eb('secret_key_id', 'is', null), eb('secret_key_id', '<>', options.notUnder!)]),
        );
  return query.orderBy('id').limit(options.limit).forUpdate().skipLocked().execute();
}

/** Writes rows' secrets as `lockSecretsToSeal` returned them, sealed anew: one statement. */
export async function storeSealedSecrets(
  db: Kysely<Database>,
  rows: readonly StoredSecretsRow[],
): Promise<void> {
  if (rows.length === 0) return;
  await sql`
    update webhooks w
       set secret = r.secret, previous_secret = r.previous_secret, secret_key_id = r.secret_key_id
      from json_to_recordset(${JSON.stringify(rows)}::json)
        as r(id uuid, secret text, previous_secret text, secret_key_id text)
     where w.id = r.id
  `.execute(db);
}

/** One row per key id in use (null: plain text), with how many rows it holds and one of them. */
export async function secretsByKeyId(db: Kysely<Database>): Promise<(StoredSecretsRow & { rows: number })[]> {
  const { rows } = await sql<StoredSecretsRow & { rows: number }>`
    select distinct on (secret_key_id) id, secret, previous_secret, secret_key_id,
           (count(*) over (partition by secret_key_id))::int as rows
      from webhooks
     order by secret_key_id, id
  `.execute(db);
  return rows;
}

/** Deletes the webhook; its deliveries, attempts and dead letters go with it (on delete cascade). */
export async function deleteWebhook(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('webhooks').where('id', '=', id).execute();
}
