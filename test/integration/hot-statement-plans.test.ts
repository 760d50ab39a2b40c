/**
 * The delivery path's batch statements run as prepared statements with generic plans
 * (`plan_cache_mode=force_generic_plan`), planned once per connection, usually while the tables
 * are still small. A plan that reads `deliveries` or `events` by scanning them then costs time
 * in proportion to the table for every batch for as long as the connection lives (the record
 * statement once scanned for a pending delivery to join a superseded attempt with). This test
 * captures the statements as they are sent, plans each the way the service does — generic,
 * against tables with nothing in them — and requires that they reach those tables by index.
 */
import { randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/database.js';
import { loadBatch, recordAttempts } from '../../src/delivery/delivery-repository.js';
import { storeEventBatch } from '../../src/events/event-repository.js';
import { createTenant, createWebhook } from '../helpers/fixtures.js';
import { withTestDatabase } from '../helpers/database.js';

type Setup = Awaited<ReturnType<typeof withTestDatabase>>;

describe('the batch statements of the delivery path', () => {
  let setup: Setup;
  let db: Kysely<Database>;
  const sent = new Map<string, string>();

  beforeAll(async () => {
    setup = await withTestDatabase();
    db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: setup.handle.pool }),
      log(event) {
        const name = /^-- prepared: ([a-z_]+)/.exec(event.query.sql)?.[1];
        if (name) sent.set(name, event.query.sql);
      },
    });
    const tenantId = await createTenant(db);
    const webhook = await createWebhook(db, { tenantId, url: 'http://127.0.0.1:9/hook' });
    const owner = `plans-${randomUUID().slice(0, 8)}`;
    const [delivery] = await storeEventBatch(
      db,
      [
        {
          id: randomUUID(),
          tenantId,
          type: 'order.created',
          payload: {},
          idempotencyKey: null,
          filters: ['*'],
        },
      ],
      { owner, limit: 10 },
    );
    expect(delivery?.webhook_id).toBe(webhook.id);
    await recordAttempts(
      db,
      [
        {
          delivery: { ...delivery!, traceparent: null, event_type: 'order.created' },
          attempt: {
            attemptNumber: 1,
            statusCode: 503,
            error: 'HTTP 503',
            durationMs: 5,
            responseBody: null,
            responseHeaders: null,
          },
          state: { status: 'failed', nextAttemptAt: new Date() },
        },
      ],
      owner,
    );
    await loadBatch(db, [{ id: delivery!.id, attempt: 2 }], owner);
  });

  afterAll(async () => {
    await setup?.cleanup();
  });

  it.each(['store_event_batch', 'record_attempts', 'load_delivery_batch'])(
    '%s reads deliveries and events by index in its generic plan',
    async (name) => {
      const text = sent.get(name);
      expect(text, `${name} was not sent`).toBeDefined();
      // Planned as the service plans it, on tables PostgreSQL knows nothing about yet.
      const { rows } = await sql<{
        'QUERY PLAN': string;
      }>`explain (generic_plan, costs off) ${sql.raw(text!)}`.execute(db);
      const plan = rows.map((row) => row['QUERY PLAN']).join('\n');
      expect(plan).not.toMatch(/Seq Scan on (deliveries|events|delivery_leases|delivery_attempts)\b/);
    },
  );
});
