/**
 * The event type catalog: schemas checked when saved and applied to POST /events (and to
 * hookrelay.emit for unknown types), deprecation, unknown-type policy, webhook warnings.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/process.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const ORDER_SCHEMA = {
  type: 'object',
  required: ['order_id', 'amount'],
  properties: {
    order_id: { type: 'string' },
    amount: { type: 'number', minimum: 0 },
    lines: {
      type: 'array',
      items: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' } } },
    },
  },
};

beforeAll(async () => {
  svc = await startTestService({ NUM_WORKERS: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

async function eventCount(tenant: string): Promise<number> {
  const { rows } = await sql<{
    n: number;
  }>`select count(*)::int as n from events where tenant_id = ${tenant}`.execute(svc.service.database.db);
  return rows[0]!.n;
}

describe('the event type catalog', () => {
  it('saves a type with its schema, refuses an invalid schema saying where, and lists it with the built-ins', async () => {
    const token = await svc.token('catalog-a');
    const created = await svc.call('PUT', '/event-types/order.created', {
      token,
      body: { description: 'An order was placed.', schema: ORDER_SCHEMA },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'order.created',
      schema: ORDER_SCHEMA,
      deprecated: false,
      built_in: false,
    });
    const again = await svc.call('PUT', '/event-types/order.created', {
      token,
      body: { schema: ORDER_SCHEMA },
    });
    expect(again.status).toBe(200);

    const invalid = await svc.call('PUT', '/event-types/order.broken', {
      token,
      body: { schema: { type: 'object', properties: { amount: { type: 'nombre' } } } },
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.details[0].field).toMatch(/^\/schema\/properties\/amount/);

    await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/h', event_types: ['order.*'] },
    });
    const list = await svc.call('GET', '/event-types', { token });
    expect(list.status).toBe(200);
    const names = list.body.entries.map((e: { name: string }) => e.name);
    expect(names).toContain('order.created');
    expect(names).toContain('hookrelay.delivery.dead');
    expect(list.body.entries.find((e: { name: string }) => e.name === 'order.created')).toMatchObject({
      webhooks: 1,
    });
    expect(
      list.body.entries.find((e: { name: string }) => e.name === 'hookrelay.delivery.dead'),
    ).toMatchObject({
      built_in: true,
      webhooks: 0,
    });
    expect((await svc.call('PUT', '/event-types/hookrelay.mine', { token, body: {} })).status).toBe(400);
    expect((await svc.call('DELETE', '/event-types/hookrelay.delivery.dead', { token })).status).toBe(400);
  });

  it('POST /events refuses a payload that fails its schema, naming each field, and stores nothing', async () => {
    const tenant = 'catalog-b';
    const token = await svc.token(tenant);
    await svc.call('PUT', '/event-types/order.created', { token, body: { schema: ORDER_SCHEMA } });
    const refused = await svc.call('POST', '/events', {
      token,
      body: { type: 'order.created', payload: { amount: 'ten', lines: [{ qty: 1 }] } },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error.details).toEqual(
      expect.arrayContaining([
        { field: '/payload/order_id', message: 'is required' },
        { field: '/payload/amount', message: 'must be number' },
        { field: '/payload/lines/0/sku', message: 'is required' },
      ]),
    );
    console.log(`a refused payload: ${JSON.stringify(refused.body)}`);
    expect(await eventCount(tenant)).toBe(0);
    const accepted = await svc.call('POST', '/events', {
      token,
      body: { type: 'order.created', payload: { order_id: '1', amount: 10 } },
    });
    expect(accepted.status).toBe(202);
    // A type without an entry is accepted as before.
    expect(
      (await svc.call('POST', '/events', { token, body: { type: 'other.thing', payload: {} } })).status,
    ).toBe(202);
  });

  it('a changed schema applies in every process within a second, without a restart', async () => {
    const token = await svc.token('catalog-c');
    await svc.call('PUT', '/event-types/user.created', { token, body: { schema: { type: 'object' } } });
    const post = () =>
      svc.call('POST', '/events', { token, body: { type: 'user.created', payload: { id: 1 } } });
    expect((await post()).status).toBe(202);
    // Changed behind this process's back, as another process would.
    await sql`update event_types set schema = '{"type": "object", "required": ["email"]}'
               where tenant_id = 'catalog-c' and name = 'user.created'`.execute(svc.service.database.db);
    await waitFor(
      async () => ((await post()).status === 400 ? true : undefined),
      5000,
      'the new schema to apply',
    );
  });

  it('a schema with an $id can be saved again, and two tenants may use the same $id', async () => {
    const schema = { $id: 'https://example.com/schemas/invoice', type: 'object', required: ['total'] };
    for (const tenant of ['catalog-id-a', 'catalog-id-b']) {
      const token = await svc.token(tenant);
      const post = () =>
        svc.call('POST', '/events', { token, body: { type: 'invoice.paid', payload: { total: 1 } } });
      expect((await svc.call('PUT', '/event-types/invoice.paid', { token, body: { schema } })).status).toBe(
        201,
      );
      expect((await post()).status).toBe(202);
      // Saved again (a new catalog version): both the save and the next check compile it again.
      expect((await svc.call('PUT', '/event-types/invoice.paid', { token, body: { schema } })).status).toBe(
        200,
      );
      await waitFor(async () => ((await post()).status === 202 ? true : undefined), 5000, 'the new version');
      const refused = await svc.call('POST', '/events', {
        token,
        body: { type: 'invoice.paid', payload: {} },
      });
      expect(refused.status).toBe(400);
    }
  });

  it('deprecated types are accepted with a Deprecation header; reject mode refuses unknown types, from SQL too', async () => {
    const tenant = 'catalog-d';
    const token = await svc.token(tenant);
    await svc.call('PUT', '/event-types/old.thing', { token, body: { deprecated: true } });
    const old = await svc.call('POST', '/events', { token, body: { type: 'old.thing', payload: {} } });
    expect(old.status).toBe(202);
    expect(old.headers.get('deprecation')).toBe('true');

    const settings = await svc.call('PUT', `/tenants/${tenant}/settings`, {
      token,
      body: { unknown_event_types: 'reject' },
    });
    expect(settings.body).toEqual({ tenant_id: tenant, unknown_event_types: 'reject' });
    await waitFor(
      async () =>
        (await svc.call('POST', '/events', { token, body: { type: 'new.thing', payload: {} } })).status ===
        400
          ? true
          : undefined,
      5000,
      'reject mode to apply',
    );
    expect(
      (await svc.call('POST', '/events', { token, body: { type: 'old.thing', payload: {} } })).status,
    ).toBe(202);
    await expect(
      sql`select hookrelay.emit(${tenant}, 'new.thing', '{}')`.execute(svc.service.database.db),
    ).rejects.toMatchObject({ code: 'HR400' });
  });

  it('types under hookrelay. cannot be sent; a webhook on an exact type the catalog lacks gets a warning', async () => {
    const token = await svc.token('catalog-e');
    const own = await svc.call('POST', '/events', {
      token,
      body: { type: 'hookrelay.webhook.disabled', payload: {} },
    });
    expect(own.status).toBe(400);
    expect(own.body.error.details[0].field).toBe('/type');

    await svc.call('PUT', '/event-types/invoice.paid', { token, body: {} });
    const typo = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/h', event_types: ['invoice.piad', 'invoice.*'] },
    });
    expect(typo.status).toBe(201);
    expect(typo.body.warnings).toEqual(['event type invoice.piad is not in the event type catalog']);
    const fine = await svc.call('POST', '/webhooks', {
      token,
      body: { url: 'https://example.com/h', event_types: ['invoice.paid'] },
    });
    expect(fine.body.warnings).toBeUndefined();
  });
});
