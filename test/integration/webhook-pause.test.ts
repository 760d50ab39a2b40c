/**
 * Pausing a webhook without losing its deliveries: by hand (PATCH enabled), automatically after
 * failing continuously for WEBHOOK_AUTO_DISABLE_AFTER, and on 410 Gone; re-enabling resumes.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.js';
import { createDatabase } from '../../src/db/database.js';
import { disableFailingWebhooks } from '../../src/webhooks/auto-disable-sweep.js';
import { setQuota } from '../helpers/dead-letters.js';
import { waitFor } from '../helpers/process.js';
import { startReceiver } from '../helpers/receiver.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const db = () => svc.service.database.db;

beforeAll(async () => {
  svc = await startTestService({
    NUM_WORKERS: '4',
    RETRY_SCHEDULE: '0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3,0.3',
    WEBHOOK_AUTO_DISABLE_AFTER: '1s',
    WEBHOOK_AUTO_DISABLE_SWEEP_MS: '100',
  });
});
afterAll(async () => {
  await svc?.stop();
});

async function countByStatus(webhookId: string): Promise<Record<string, number>> {
  const { rows } = await sql<{ status: string; n: number }>`
    select status, count(*)::int as n from deliveries where webhook_id = ${webhookId} group by status
  `.execute(db());
  return Object.fromEntries(rows.map((row) => [row.status, row.n]));
}

describe('PATCH enabled: false, then true', () => {
  it('a webhook with 100 pending deliveries, disabled and re-enabled later, delivers all 100, none twice', async () => {
    const r = await startReceiver({ behaviour: { kind: 'status', status: 200, delayMs: 150 } });
    try {
      const token = await svc.token('pauser');
      const created = await svc.call('POST', '/webhooks', {
        token,
        body: { url: r.url, event_types: ['*'] },
      });
      const webhookId: string = created.body.id;
      // Five in flight at a time, so that most deliveries are still waiting when the pause comes.
      await setQuota(db(), 'pauser', { max_events_per_sec: 10_000, max_concurrent_deliveries: 5 });

      const accepted = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          svc.call('POST', '/events', { token, body: { type: 'order.created', payload: { i } } }),
        ),
      );
      const deliveryIds = accepted.map((res) => res.body.delivery_ids[0] as string);
      expect(new Set(deliveryIds).size).toBe(100);
      const off = await svc.call('PATCH', `/webhooks/${webhookId}`, { token, body: { enabled: false } });
      expect(off.body).toMatchObject({ enabled: false, disabled_reason: 'disabled by pauser:tenant' });

      // Whatever was in flight finishes; everything else waits as paused, its job spent.
      const settled = await waitFor(
        async () => {
          const counts = await countByStatus(webhookId);
          return (counts.pending ?? 0) + (counts.failed ?? 0) === 0 ? counts : undefined;
        },
        30_000,
        'every delivery to be paused or delivered',
      );
      console.log(
        `pause: ${settled.paused ?? 0} of 100 paused, ${settled.succeeded ?? 0} delivered before the pause took hold`,
      );
      expect(settled.paused ?? 0).toBeGreaterThan(50);
      expect((settled.paused ?? 0) + (settled.succeeded ?? 0)).toBe(100);
      // No job names them any more (a job's completion is recorded just after it ran).
      await waitFor(
        async () => {
          const { rows: jobs } = await sql<{ n: number }>`
            select count(*)::int as n
              from graphile_worker._private_jobs j
              cross join lateral json_array_elements(j.payload->'deliveries') as e(entry)
             where e.entry->>'id' = any(${deliveryIds}::text[])
          `.execute(db());
          return jobs[0]!.n === 0 ? true : undefined;
        },
        10_000,
        'the paused deliveries to have no job',
      );
      const deliveredWhilePaused = r.requests.length;
      expect(deliveredWhilePaused).toBe(settled.succeeded ?? 0);

      const on = await svc.call('PATCH', `/webhooks/${webhookId}`, { token, body: { enabled: true } });
      expect(on.body).toMatchObject({ enabled: true, disabled_reason: null });
      await waitFor(
        async () => ((await countByStatus(webhookId)).succeeded === 100 ? true : undefined),
        60_000,
        'all 100 delivered',
      );
      const ids = r.requests.map((q) => q.headers['webhook-id']);
      expect(ids).toHaveLength(100);
      expect(new Set(ids)).toEqual(new Set(deliveryIds));
      const audit = await svc.call('GET', `/audit-log?object_id=${webhookId}&action=webhook.updated`, {
        token,
      });
      expect(audit.body.entries[0].details.resumed_deliveries).toBe(settled.paused);
    } finally {
      await r.close();
    }
  });
});

describe('automatic disable after failing continuously (WEBHOOK_AUTO_DISABLE_AFTER)', () => {
  it('disables the failing webhook with its reason and an audit row; its delivery waits as paused, and resumes', async () => {
    const r = await startReceiver({ behaviour: { kind: 'status', status: 500 } });
    const healthy = await startReceiver();
    try {
      const token = await svc.token('flaky');
      const failing = await svc.call('POST', '/webhooks', {
        token,
        body: { url: r.url, event_types: ['a.*'] },
      });
      const fine = await svc.call('POST', '/webhooks', {
        token,
        body: { url: healthy.url, event_types: ['b.*'] },
      });
      const event = await svc.call('POST', '/events', { token, body: { type: 'a.x', payload: {} } });
      const deliveryId: string = event.body.delivery_ids[0];
      const webhookId: string = failing.body.id;

      const disabled = await waitFor(
        async () => {
          const res = await svc.call('GET', `/webhooks/${webhookId}`, { token });
          return res.body.enabled === false ? res.body : undefined;
        },
        15_000,
        'the failing webhook to be disabled',
      );
      expect(disabled.disabled_reason).toBe(`failing continuously since ${disabled.failing_since}`);
      const failingFor = Date.parse(disabled.disabled_at) - Date.parse(disabled.failing_since);
      expect(failingFor).toBeGreaterThanOrEqual(1000);

      // Its delivery was mid-series: it waits as paused, not dead, with retries left.
      const paused = await waitFor(async () => {
        const res = await svc.call('GET', `/deliveries/${deliveryId}`, { token });
        return res.body.status === 'paused' ? res.body : undefined;
      });
      expect(paused.attempts.length).toBeLessThan(11);
      const audit = await svc.call('GET', `/audit-log?action=webhook.disabled&object_id=${webhookId}`, {
        token,
      });
      expect(audit.body.entries).toEqual([
        expect.objectContaining({
          actor: 'system',
          tenant_id: 'flaky',
          request_id: null,
          details: { reason: disabled.disabled_reason, failing_since: disabled.failing_since },
        }),
      ]);
      // The healthy webhook of the same tenant is untouched.
      const other = await svc.call('GET', `/webhooks/${fine.body.id}`, { token });
      expect(other.body.enabled).toBe(true);

      r.respond({ kind: 'status', status: 200 });
      await svc.call('PATCH', `/webhooks/${webhookId}`, { token, body: { enabled: true } });
      await waitFor(async () => {
        const res = await svc.call('GET', `/deliveries/${deliveryId}`, { token });
        return res.body.status === 'succeeded' ? true : undefined;
      });
      expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(new Set([deliveryId]));
    } finally {
      await r.close();
      await healthy.close();
    }
  });

  it('sweeps running at once in several processes disable (and audit) each webhook once', async () => {
    const token = await svc.token('swept');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await svc.call('POST', '/webhooks', {
        token,
        body: { url: `http://127.0.0.1:9/${i}`, event_types: ['*'] },
      });
      ids.push(res.body.id);
    }
    // Three more "processes" (pools of their own) beside the service's own sweep.
    const pools = [1, 2, 3].map(() => createDatabase(svc.database.url, { max: 2 }));
    try {
      await sql`update webhooks set failing_since = now() - interval '1 hour' where id = any(${ids}::uuid[])`.execute(
        db(),
      );
      const results = await Promise.all(pools.map((pool) => disableFailingWebhooks(pool.db, 1000)));
      await waitFor(async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from webhooks where id = any(${ids}::uuid[]) and not enabled`.execute(
          db(),
        );
        return rows[0]!.n === 5 ? true : undefined;
      });
      expect(results.flat().filter((w) => ids.includes(w.id)).length).toBeLessThanOrEqual(5);
      const { rows } = await sql<{ object_id: string; n: number }>`
        select object_id, count(*)::int as n from audit_log
         where action = 'webhook.disabled' and object_id = any(${ids}::text[]) group by object_id
      `.execute(db());
      expect(rows).toHaveLength(5);
      expect(rows.every((row) => row.n === 1)).toBe(true);
    } finally {
      await Promise.all(pools.map((pool) => pool.close()));
    }
  });

  it('WEBHOOK_AUTO_DISABLE_AFTER takes durations; 0 turns it off; nonsense stops start-up', () => {
    const parse = (value: string) =>
      parseConfig({ WEBHOOK_AUTO_DISABLE_AFTER: value }).webhookAutoDisableAfterMs;
    expect(parseConfig({}).webhookAutoDisableAfterMs).toBe(5 * 86_400_000);
    expect(parse('5d')).toBe(5 * 86_400_000);
    expect(parse('12h')).toBe(12 * 3_600_000);
    expect(parse('90')).toBe(90_000);
    expect(parse('1.5s')).toBe(1500);
    expect(parse('0')).toBe(0);
    for (const bad of ['soon', '-1d', '5 days', '400d']) {
      expect(() => parse(bad), bad).toThrow(/WEBHOOK_AUTO_DISABLE_AFTER/);
    }
  });
});

describe('410 Gone', () => {
  it('disables the webhook with its reason, audited as system through the audit repository', async () => {
    const r = await startReceiver({ behaviour: { kind: 'status', status: 410 } });
    try {
      const token = await svc.token('gone');
      const created = await svc.call('POST', '/webhooks', {
        token,
        body: { url: r.url, event_types: ['*'] },
      });
      const event = await svc.call('POST', '/events', { token, body: { type: 'x', payload: {} } });
      const deliveryId: string = event.body.delivery_ids[0];
      await waitFor(async () => {
        const res = await svc.call('GET', `/deliveries/${deliveryId}`, { token });
        return res.body.status === 'paused' ? true : undefined;
      });
      const webhook = await svc.call('GET', `/webhooks/${created.body.id}`, { token });
      expect(webhook.body).toMatchObject({ enabled: false, disabled_reason: '410 Gone from endpoint' });
      const audit = await svc.call('GET', `/audit-log?action=webhook.disabled&object_id=${created.body.id}`, {
        token,
      });
      expect(audit.body.entries).toEqual([
        expect.objectContaining({
          actor: 'system',
          request_id: null,
          details: { reason: '410 Gone from endpoint', delivery_id: deliveryId },
        }),
      ]);
    } finally {
      await r.close();
    }
  });
});
