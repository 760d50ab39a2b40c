/**
 * Subscriptions: create, read, change, delete, rotate the secret. Every change writes its
 * audit row in the same transaction as the change.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Updateable } from 'kysely';
import { actingTenant, objectScope, tenantFilter, type Caller } from '../tenancy/caller.js';
import { listAnswer, type ListAnswer } from '../db/page.js';
import { actorOf, byCaller, writeAudit } from '../audit/audit-repository.js';
import type { Config } from '../config.js';
import type { Db } from '../db/database.js';
import { AppError, notFound } from '../errors.js';
import { generateEd25519Secret, type SignatureType } from '../delivery/signing.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { openSecrets, sealSecrets } from './webhook-secrets.js';
import { ensureTenant } from '../tenancy/tenant-repository.js';
import type {
  CreateWebhookBody,
  FilterTestBody,
  ListWebhooksQuery,
  RotateSecretBody,
  UpdateWebhookBody,
} from './webhook-schemas.js';
import {
  deleteWebhook,
  findWebhook,
  insertWebhook,
  listWebhooks,
  rotateWebhookSecret,
  updateWebhook,
  type WebhookRow,
} from './webhook-repository.js';
import type { WebhookOrdering, WebhookTable } from './webhook.table.js';
import { releaseFifoOrder } from '../delivery/fifo.js';
import { disableWebhook, disabledByReason, enableWebhook } from './webhook-state.js';
import { emitOperationalEvent, isOperationalType } from '../events/operational-events.js';
import { catalogNames } from '../event-types/event-type-repository.js';
import { assertFilter, testFilter, type FilterTestAnswer } from './webhook-filter.js';
import { assertWebhookUrl } from './webhook-url.js';

/** A webhook as the API shows it: never the previous secret, the secret only where asked for. */
export interface WebhookView {
  id: string;
  tenant_id: string;
  url: string;
  event_types: string[];
  description: string | null;
  filter: string | null;
  ordering: WebhookOrdering;
  timeout_ms: number | null;
  enabled: boolean;
  signature_type: SignatureType;
  /** ed25519 webhooks: what receivers verify with (not a secret, so always shown). */
  public_key?: string;
  disabled_reason: string | null;
  disabled_at: string | null;
  failing_since: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
  /** hmac-sha256 webhooks, where asked for. */
  secret?: string;
  warnings?: string[];
}

/**
 * Exact event types a webhook subscribes to that its tenant's catalog lacks, while the catalog
 * has entries: the answer says so (201 all the same), so that a typo shows.
 */
async function catalogWarnings(db: Db, tenantId: string, eventTypes: readonly string[]): Promise<string[]> {
  const exact = eventTypes.filter(
    (entry) => entry !== '*' && !entry.endsWith('.*') && !isOperationalType(entry),
  );
  if (exact.length === 0) return [];
  const known = new Set(await catalogNames(db, tenantId));
  if (known.size === 0) return [];
  return exact
    .filter((name) => !known.has(name))
    .map((name) => `event type ${name} is not in the event type catalog`);
}

const withWarnings = (view: WebhookView, warnings: string[]): WebhookView =>
  warnings.length > 0 ? { ...view, warnings } : view;

/** `whsec_` + base64 of 32 random bytes, the Standard Webhooks form. */
export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

const iso = (value: Date | null): string | null => (value === null ? null : value.toISOString());

/** The view of a row; `secret` is the decrypted secret to show (hmac-sha256 only), when asked for. */
export function toWebhookView(row: WebhookRow, options: { secret?: string } = {}): WebhookView {
  const expiresAt = row.previous_secret_expires_at;
  return {
    id: row.id,
    tenant_id: row.tenant_id,
    url: row.url,
    event_types: row.event_types,
    description: row.description,
    filter: row.filter,
    ordering: row.ordering,
    timeout_ms: row.timeout_ms,
    enabled: row.enabled,
    signature_type: row.signature_type,
    ...(row.public_key !== null ? { public_key: row.public_key } : {}),
    disabled_reason: row.disabled_reason,
    disabled_at: iso(row.disabled_at),
    failing_since: iso(row.failing_since),
    // Once expired, the previous secret no longer signs: the field says so by being null.
    previous_secret_expires_at: expiresAt !== null && expiresAt > new Date() ? expiresAt.toISOString() : null,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    ...(options.secret !== undefined && row.signature_type === 'hmac-sha256'
      ? { secret: options.secret }
      : {}),
  };
}

/** The webhook's settings an audit row may show (no secret). */
function auditedFields(row: WebhookRow): Record<string, unknown> {
  return {
    url: row.url,
    event_types: row.event_types,
    description: row.description,
    filter: row.filter,
    ordering: row.ordering,
    timeout_ms: row.timeout_ms,
    enabled: row.enabled,
    signature_type: row.signature_type,
  };
}

/** `{field: {from, to}}` for each audited field the update changed. */
function differences(before: WebhookRow, after: WebhookRow): Record<string, { from: unknown; to: unknown }> {
  const from = auditedFields(before);
  const to = auditedFields(after);
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const field of Object.keys(to)) {
    if (JSON.stringify(from[field]) !== JSON.stringify(to[field]))
      changes[field] = { from: from[field], to: to[field] };
  }
  return changes;
}

export interface WebhookService {
  create(caller: Caller, body: CreateWebhookBody): Promise<WebhookView>;
  list(caller: Caller, query: ListWebhooksQuery): Promise<ListAnswer<WebhookView>>;
  get(caller: Caller, id: string, tenantId?: string): Promise<WebhookView>;
  getSecret(
    caller: Caller,
    id: string,
    tenantId?: string,
  ): Promise<{ secret: string } | { public_key: string }>;
  testFilter(caller: Caller, id: string, body: FilterTestBody, tenantId?: string): Promise<FilterTestAnswer>;
  update(caller: Caller, id: string, body: UpdateWebhookBody): Promise<WebhookView>;
  remove(caller: Caller, id: string, tenantId?: string): Promise<void>;
  rotateSecret(caller: Caller, id: string, body: RotateSecretBody): Promise<WebhookView>;
}

/** A new secret of the type: for ed25519 the private key, and the public key to show. */
function newSecret(type: SignatureType): { secret: string; publicKey: string | null } {
  if (type === 'ed25519') return generateEd25519Secret();
  return { secret: generateSecret(), publicKey: null };
}

function refuseGivenSecret(): never {
  throw new AppError(
    'invalid_request',
    'An ed25519 webhook cannot be given a secret: the service generates its key pair.',
    {
      details: [{ field: '/secret', message: 'is for hmac-sha256 webhooks only' }],
    },
  );
}

export function createWebhookService(deps: {
  db: Db;
  config: Pick<Config, 'ssrfAllowlist' | 'webhookHttpsOnly'>;
  secrets: SecretBox;
}): WebhookService {
  const { db, config, secrets } = deps;
  const checkUrl = (url: string) =>
    assertWebhookUrl(url, config.ssrfAllowlist, { httpsOnly: config.webhookHttpsOnly });

  const audit = (caller: Caller, row: WebhookRow, action: string, details: Record<string, unknown>) =>
    byCaller(caller, {
      action,
      objectType: 'webhook',
      objectId: row.id,
      tenantId: row.tenant_id,
      details,
    });

  return {
    async create(caller, body) {
      const tenantId = actingTenant(caller.principal, body.tenant_id);
      checkUrl(body.url);
      if (body.filter) await assertFilter(db, body.filter);
      const signatureType = body.signature_type ?? 'hmac-sha256';
      if (signatureType === 'ed25519' && body.secret !== undefined) refuseGivenSecret();
      await ensureTenant(db, tenantId);
      const enabled = body.enabled ?? true;
      const id = randomUUID();
      const generated = newSecret(signatureType);
      const secret = body.secret ?? generated.secret;
      const sealed = sealSecrets(secrets, id, { secret, previous_secret: null });
      return db.transaction().execute(async (trx) => {
        const row = await insertWebhook(trx, {
          id,
          tenantId,
          url: body.url,
          eventTypes: body.event_types,
          signatureType,
          secret: sealed.secret,
          secretKeyId: sealed.secret_key_id!,
          publicKey: generated.publicKey,
          description: body.description ?? null,
          filter: body.filter ?? null,
          ordering: body.ordering ?? 'none',
          timeoutMs: body.timeout_ms ?? null,
          enabled,
          disabledReason: enabled ? null : disabledByReason(actorOf(caller.principal)),
        });
        await writeAudit(trx, audit(caller, row, 'webhook.created', auditedFields(row)));
        return withWarnings(
          toWebhookView(row, { secret }),
          await catalogWarnings(trx, tenantId, row.event_types),
        );
      });
    },

    async list(caller, query) {
      const { rows, total } = await listWebhooks(db, {
        tenantId: tenantFilter(caller.principal, query.tenant_id),
        enabled: query.enabled,
        limit: query.limit,
        offset: query.offset,
      });
      return listAnswer(
        rows.map((row) => toWebhookView(row)),
        total,
        query,
      );
    },

    async get(caller, id, tenantId) {
      const row = await findWebhook(db, id, objectScope(caller.principal, tenantId));
      if (!row) throw notFound('Webhook');
      return toWebhookView(row);
    },

    async testFilter(caller, id, body, tenantId) {
      const row = await findWebhook(db, id, objectScope(caller.principal, tenantId));
      if (!row) throw notFound('Webhook');
      return testFilter(db, row, body);
    },

    async getSecret(caller, id, tenantId) {
      const row = await findWebhook(db, id, objectScope(caller.principal, tenantId));
      if (!row) throw notFound('Webhook');
      if (row.public_key !== null) return { public_key: row.public_key };
      return { secret: openSecrets(secrets, row.id, row).secret };
    },

    async update(caller, id, body) {
      const scope = objectScope(caller.principal, body.tenant_id);
      if (body.url !== undefined) checkUrl(body.url);
      if (body.filter) await assertFilter(db, body.filter);
      return db.transaction().execute(async (trx) => {
        const before = await findWebhook(trx, id, scope, { lock: 'no key update' });
        if (!before) throw notFound('Webhook');
        const changes: Updateable<WebhookTable> = {};
        if (body.url !== undefined) changes.url = body.url;
        if (body.event_types !== undefined) changes.event_types = body.event_types;
        if (body.description !== undefined) changes.description = body.description;
        if (body.filter !== undefined) changes.filter = body.filter;
        if (body.ordering !== undefined) changes.ordering = body.ordering;
        if (body.timeout_ms !== undefined) changes.timeout_ms = body.timeout_ms;
        let after = await updateWebhook(trx, id, changes);
        // Deliveries held back behind one another go out in parallel from now on.
        if (before.ordering === 'fifo' && after.ordering === 'none') await releaseFifoOrder(trx, id);
        let resumed = 0;
        if (body.enabled === false && before.enabled) {
          after =
            (await disableWebhook(trx, {
              webhookId: id,
              tenantId: before.tenant_id,
              reason: disabledByReason(actorOf(caller.principal)),
              actor: actorOf(caller.principal),
              requestId: caller.requestId,
            })) ?? after;
        } else if (body.enabled === true && !before.enabled) {
          // Deliveries that waited while it was disabled go out again, committed with the change.
          const enabled = await enableWebhook(trx, id);
          if (enabled) ({ row: after, resumed } = enabled);
        }
        await writeAudit(
          trx,
          audit(caller, after, 'webhook.updated', {
            changes: differences(before, after),
            ...(resumed > 0 ? { resumed_deliveries: resumed } : {}),
          }),
        );
        const warnings = body.event_types
          ? await catalogWarnings(trx, after.tenant_id, after.event_types)
          : [];
        return withWarnings(toWebhookView(after), warnings);
      });
    },

    async remove(caller, id, tenantId) {
      const scope = objectScope(caller.principal, tenantId);
      await db.transaction().execute(async (trx) => {
        const row = await findWebhook(trx, id, scope, { lock: 'update' });
        if (!row) throw notFound('Webhook');
        await deleteWebhook(trx, id);
        await writeAudit(trx, audit(caller, row, 'webhook.deleted', auditedFields(row)));
      });
    },

    async rotateSecret(caller, id, body) {
      const scope = objectScope(caller.principal, body.tenant_id);
      return db.transaction().execute(async (trx) => {
        const before = await findWebhook(trx, id, scope, { lock: 'no key update' });
        if (!before) throw notFound('Webhook');
        if (before.signature_type === 'ed25519' && body.secret !== undefined) refuseGivenSecret();
        const generated = newSecret(before.signature_type);
        const secret = body.secret ?? generated.secret;
        // Both sealed anew under the current key: a row's secrets share one key id.
        const previous = openSecrets(secrets, id, before).secret;
        const after = await rotateWebhookSecret(trx, id, {
          ...sealSecrets(secrets, id, { secret, previous_secret: previous }),
          public_key: generated.publicKey,
        });
        await writeAudit(
          trx,
          audit(caller, after, 'webhook.secret_rotated', {
            generated: body.secret === undefined,
            previous_secret_expires_at: after.previous_secret_expires_at?.toISOString() ?? null,
          }),
        );
        await emitOperationalEvent(trx, after.tenant_id, 'hookrelay.webhook.secret_rotated', {
          webhook_id: after.id,
          previous_secret_expires_at: after.previous_secret_expires_at?.toISOString() ?? null,
        });
        return toWebhookView(after, { secret });
      });
    },
  };
}
