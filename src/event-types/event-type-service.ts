/**
 * A tenant's event type catalog: put (create or replace), read, list, delete, and the tenant's
 * `unknown_event_types` setting. The service's own operational types (hookrelay.*) are listed
 * with their schemas and cannot be changed. Every change is audited.
 */
import { byCaller, writeAudit } from '../audit/audit-repository.js';
import type { Db } from '../db/database.js';
import { AppError, notFound } from '../errors.js';
import { isOperationalType, OPERATIONAL_EVENT_TYPES } from '../events/operational-events.js';
import { actingTenant, type Caller } from '../tenancy/caller.js';
import { ensureTenant } from '../tenancy/tenant-repository.js';
import { schemaProblems } from './event-type-catalog.js';
import {
  deleteEventType,
  findEventType,
  listEventTypes,
  setUnknownEventTypes,
  subscribersOf,
  upsertEventType,
  type EventTypeRow,
  type UnknownEventTypes,
} from './event-type-repository.js';
import type { PutEventTypeBody } from './event-type-schemas.js';

export interface EventTypeView {
  name: string;
  tenant_id: string;
  description: string | null;
  schema: Record<string, unknown> | null;
  deprecated: boolean;
  built_in: boolean;
  webhooks: number;
  created_at: string | null;
  updated_at: string | null;
}

const toView = (row: EventTypeRow, webhooks: number): EventTypeView => ({
  name: row.name,
  tenant_id: row.tenant_id,
  description: row.description,
  schema: row.schema,
  deprecated: row.deprecated,
  built_in: false,
  webhooks,
  created_at: row.created_at.toISOString(),
  updated_at: row.updated_at.toISOString(),
});

function builtIn(tenantId: string, name: string, webhooks: number): EventTypeView | undefined {
  const entry = OPERATIONAL_EVENT_TYPES[name as keyof typeof OPERATIONAL_EVENT_TYPES];
  return (
    entry && {
      name,
      tenant_id: tenantId,
      description: entry.description,
      schema: entry.schema as unknown as Record<string, unknown>,
      deprecated: false,
      built_in: true,
      webhooks,
      created_at: null,
      updated_at: null,
    }
  );
}

const readOnly = (): AppError =>
  new AppError(
    'invalid_request',
    'Event types under hookrelay. are the service\u2019s own and cannot be changed.',
    {
      details: [{ field: '/name', message: 'is reserved (hookrelay.*)' }],
    },
  );

export function createEventTypeService(deps: { db: Db }) {
  const { db } = deps;
  return {
    async put(
      caller: Caller,
      name: string,
      body: PutEventTypeBody,
    ): Promise<{ view: EventTypeView; created: boolean }> {
      const tenantId = actingTenant(caller.principal, body.tenant_id);
      if (isOperationalType(name)) throw readOnly();
      if (body.schema) {
        const problems = schemaProblems(body.schema);
        if (problems.length > 0) {
          throw new AppError('invalid_request', 'The schema is not a valid JSON Schema (draft 2020-12).', {
            details: problems,
          });
        }
      }
      await ensureTenant(db, tenantId);
      return db.transaction().execute(async (trx) => {
        const { row, created } = await upsertEventType(trx, {
          tenantId,
          name,
          description: body.description ?? null,
          schema: body.schema ?? null,
          deprecated: body.deprecated ?? false,
        });
        await writeAudit(
          trx,
          byCaller(caller, {
            action: created ? 'event_type.created' : 'event_type.updated',
            objectType: 'event_type',
            objectId: name,
            tenantId,
            details: { has_schema: row.schema !== null, deprecated: row.deprecated },
          }),
        );
        const webhooks = (await subscribersOf(trx, tenantId, [name])).get(name) ?? 0;
        return { view: toView(row, webhooks), created };
      });
    },

    async get(caller: Caller, name: string, tenantId?: string): Promise<EventTypeView> {
      const tenant = actingTenant(caller.principal, tenantId);
      const subscribers = async () => (await subscribersOf(db, tenant, [name])).get(name) ?? 0;
      if (isOperationalType(name)) {
        const known = builtIn(tenant, name, await subscribers());
        if (known) return known;
      }
      const row = await findEventType(db, tenant, name);
      if (!row) throw notFound('Event type');
      return toView(row, await subscribers());
    },

    async list(caller: Caller, tenantId?: string): Promise<{ entries: EventTypeView[] }> {
      const tenant = actingTenant(caller.principal, tenantId);
      const rows = await listEventTypes(db, tenant);
      const builtInNames = Object.keys(OPERATIONAL_EVENT_TYPES);
      const counts = await subscribersOf(db, tenant, [...rows.map((row) => row.name), ...builtInNames]);
      return {
        entries: [
          ...rows.map((row) => toView(row, counts.get(row.name) ?? 0)),
          ...builtInNames.map((name) => builtIn(tenant, name, counts.get(name) ?? 0)!),
        ],
      };
    },

    async remove(caller: Caller, name: string, tenantId?: string): Promise<void> {
      const tenant = actingTenant(caller.principal, tenantId);
      if (isOperationalType(name)) throw readOnly();
      await db.transaction().execute(async (trx) => {
        if (!(await deleteEventType(trx, tenant, name))) throw notFound('Event type');
        await writeAudit(
          trx,
          byCaller(caller, {
            action: 'event_type.deleted',
            objectType: 'event_type',
            objectId: name,
            tenantId: tenant,
          }),
        );
      });
    },

    async setUnknownEventTypes(caller: Caller, tenantId: string, mode: UnknownEventTypes) {
      const tenant = actingTenant(caller.principal, tenantId);
      await ensureTenant(db, tenant);
      await db.transaction().execute(async (trx) => {
        await setUnknownEventTypes(trx, tenant, mode);
        await writeAudit(
          trx,
          byCaller(caller, {
            action: 'tenant.settings_updated',
            objectType: 'tenant',
            objectId: tenant,
            tenantId: tenant,
            details: { unknown_event_types: mode },
          }),
        );
      });
      return { tenant_id: tenant, unknown_event_types: mode };
    },
  };
}
