/**
 * Payload filters: a webhook's SQL/JSON path predicate over {"type", "timestamp", "data"},
 * parsed by PostgreSQL when saved and evaluated where deliveries are created.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filtersMatching } from '../../src/events/event-type-match.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let token: string;
let tenants = 0;
const EU_OVER_100 = '$.data.amount > 100 && $.data.region == "eu"';

beforeAll(async () => {
  // No workers: what matters is which deliveries are created.
  svc = await startTestService({ NUM_WORKERS: '0' });
  token = await svc.token('filters');
});
afterAll(async () => {
  await svc?.stop();
});

/** Each test its own tenant, so that one test's webhooks do not see another's events. */
async function useFreshTenant(): Promise<void> {
  token = await svc.token(`filters-${++tenants}`);
}

async function createWebhook(body: Record<string, unknown>) {
  return svc.call('POST', '/webhooks', {
    token,
    body: { url: 'https://example.com/h', event_types: ['order.*'], ...body },
  });
}

async function deliveriesOf(webhookId: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    select count(*)::int as n from deliveries where webhook_id = ${webhookId}`.execute(
    svc.service.database.db,
  );
  return rows[0]!.n;
}

describe('a webhook filter', () => {
  it('is saved and shown as given; a filter PostgreSQL cannot parse is a 400 naming filter', async () => {
    const created = await createWebhook({ filter: EU_OVER_100 });
    expect(created.status).toBe(201);
    expect(created.body.filter).toBe(EU_OVER_100);

    const bad = await createWebhook({ filter: '$.data.amount >>> 1' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual([
      { field: '/filter', message: expect.stringMatching(/^is not a SQL\/JSON path: .*syntax error/) },
    ]);
    const patched = await svc.call('PATCH', `/webhooks/${created.body.id as string}`, {
      token,
      body: { filter: 'not a path' },
    });
    expect(patched.status).toBe(400);
    expect(patched.body.error.details[0].field).toBe('/filter');
  });

  it('creates deliveries only for the events it matches, in the storing statement', async () => {
    await useFreshTenant();
    const filtered = (await createWebhook({ filter: EU_OVER_100 })).body.id as string;
    const unfiltered = (await createWebhook({})).body.id as string;
    const events = [
      { amount: 250, region: 'eu' }, // matches
      { amount: 50, region: 'eu' }, // too small
      { amount: 250, region: 'us' }, // elsewhere
      { amount: 'lots', region: 'eu' }, // a string against a number: an error, so no match
      { region: 'eu' }, // no amount
    ];
    const answers = await Promise.all(
      events.map((payload) =>
        svc.call('POST', '/events', { token, body: { type: 'order.created', payload } }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual([202, 202, 202, 202, 202]);
    expect(answers.map((a) => a.body.webhooks_queued)).toEqual([2, 1, 1, 1, 1]);
    expect(await deliveriesOf(filtered)).toBe(1);
    expect(await deliveriesOf(unfiltered)).toBe(5);
  });

  it('sees the type and timestamp too, and PATCH null removes it', async () => {
    await useFreshTenant();
    const id = (await createWebhook({ filter: '$.type == "order.paid"' })).body.id as string;
    await svc.call('POST', '/events', { token, body: { type: 'order.created', payload: {} } });
    await svc.call('POST', '/events', { token, body: { type: 'order.paid', payload: {} } });
    expect(await deliveriesOf(id)).toBe(1);
    const cleared = await svc.call('PATCH', `/webhooks/${id}`, { token, body: { filter: null } });
    expect(cleared.body.filter).toBeNull();
    await svc.call('POST', '/events', { token, body: { type: 'order.created', payload: {} } });
    expect(await deliveriesOf(id)).toBe(2);
  });

  it('POST /webhooks/:id/filter-test says whether an event would be delivered, and changes nothing', async () => {
    const id = (await createWebhook({ filter: EU_OVER_100 })).body.id as string;
    const test = (body: unknown) => svc.call('POST', `/webhooks/${id}/filter-test`, { token, body });
    expect((await test({ type: 'order.created', data: { amount: 101, region: 'eu' } })).body).toEqual({
      matches: true,
      filter_matches: true,
      event_type_matches: true,
      filter: EU_OVER_100,
    });
    expect((await test({ type: 'order.created', data: { amount: 100, region: 'eu' } })).body).toMatchObject({
      matches: false,
      filter_matches: false,
      event_type_matches: true,
    });
    expect((await test({ type: 'invoice.paid', data: { amount: 500, region: 'eu' } })).body).toMatchObject({
      matches: false,
      filter_matches: true,
      event_type_matches: false,
    });
    expect((await test({ type: 'order.created' })).status).toBe(400);
    const other = await svc.token('someone-else');
    expect(
      (await svc.call('POST', `/webhooks/${id}/filter-test`, { token: other, body: { type: 'a', data: {} } }))
        .status,
    ).toBe(404);
    expect(await deliveriesOf(id)).toBe(0);
  });

  it('filter-test reads the timestamp as a receiver gets it: UTC, with milliseconds', async () => {
    const filter = '$.timestamp == "2026-01-01T10:00:00.000Z"';
    const id = (await createWebhook({ filter })).body.id as string;
    const test = (timestamp: string) =>
      svc.call('POST', `/webhooks/${id}/filter-test`, {
        token,
        body: { type: 'order.created', timestamp, data: {} },
      });
    expect((await test('2026-01-01T12:00:00+02:00')).body.filter_matches).toBe(true);
    expect((await test('2026-01-01T10:00:00Z')).body.filter_matches).toBe(true);
    expect((await test('2026-01-01T10:00:01Z')).body.filter_matches).toBe(false);
  });

  it('applies to events emitted from SQL too', async () => {
    await useFreshTenant();
    const id = (await createWebhook({ filter: EU_OVER_100 })).body.id as string;
    const db = svc.service.database.db;
    const tenant = `filters-${tenants}`;
    await sql`select hookrelay.emit(${tenant}, 'order.created', '{"amount": 500, "region": "eu"}')`.execute(
      db,
    );
    await sql`select hookrelay.emit(${tenant}, 'order.created', '{"amount": 5, "region": "eu"}')`.execute(db);
    expect(await deliveriesOf(id)).toBe(1);
  });
});

it('event_type_filters() in SQL is the rule of filtersMatching() in TypeScript', async () => {
  const types = [
    'a',
    'a.b',
    'a.b.c',
    'order.created',
    'x.y.z.w',
    'trailing.',
    '.leading',
    'a..b',
    'a:b.c-d_e',
  ];
  const { rows } = await sql<{ type: string; filters: string[] }>`
    select t as type, event_type_filters(t) as filters from unnest(${types}::text[]) t`.execute(
    svc.service.database.db,
  );
  for (const row of rows) expect(row.filters, row.type).toEqual(filtersMatching(row.type));
});
