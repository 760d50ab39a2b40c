/**
 * Every file in sql/runbook/ run the way docs/runbook.md tells an operator to run it — the real
 * `psql` binary, `psql <url> -X [-v name=value …] -f <file>` — against a migrated database seeded
 * with tenants, webhooks, events, deliveries, attempts, dead letters and graphile-worker jobs.
 * Each must exit 0 and show what it claims to; the files that change things must change them.
 * psql comes from Debian's postgresql-client (scripts/ci-tools.sh installs it).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { REPO_ROOT, waitFor } from '../helpers/process.js';
import { startTestService, type TestService } from '../helpers/service.js';

const RUNBOOK_DIR = path.join(REPO_ROOT, 'sql/runbook');
const runbookFiles = fs
  .readdirSync(RUNBOOK_DIR)
  .filter((name) => name.endsWith('.sql'))
  .sort();

interface PsqlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `psql <url> -X -v k=v … -f sql/runbook/<file>`, as the file's own header says to run it. */
function psql(url: string, file: string, variables: Record<string, string> = {}): Promise<PsqlResult> {
  const args = [url, '-X'];
  for (const [name, value] of Object.entries(variables)) args.push('-v', `${name}=${value}`);
  args.push('-f', path.join(RUNBOOK_DIR, file));
  return new Promise((resolve) => {
    execFile(
      'psql',
      args,
      { env: { ...process.env, PGCONNECT_TIMEOUT: '10', PAGER: '' }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const ran = new Set<string>();
async function runOk(url: string, file: string, variables: Record<string, string> = {}): Promise<string> {
  const result = await psql(url, file, variables);
  ran.add(file);
  if (result.code !== 0 || /\bERROR\b/.test(result.stderr)) {
    throw new Error(`${file} exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
  }
  return result.stdout;
}

const ids = {
  failingWebhook: '11111111-0000-4000-8000-000000000001',
  healthyWebhook: '11111111-0000-4000-8000-000000000002',
  globexWebhook: '11111111-0000-4000-8000-000000000003',
  orphanDelivery: '22222222-0000-4000-8000-0000000000ff',
};

/** Rows shaped like a service that has run for a while, with a few things wrong with it. */
const SEED = `
insert into tenants (id) values ('acme'), ('globex'), ('initech');
insert into quotas (tenant_id) values ('acme'), ('globex'), ('initech');

insert into webhooks (id, tenant_id, url, event_types, secret, failing_since) values
  ('${ids.failingWebhook}', 'acme', 'https://user:hunter2@hooks.acme.test/in?token=abc', '{order.*}', 'whsec_c2VjcmV0', now() - interval '20 minutes'),
  ('${ids.healthyWebhook}', 'acme', 'https://ok.acme.test/hook', '{*}', 'plain-secret', null),
  ('${ids.globexWebhook}', 'globex', 'https://globex.test/hook', '{*}', 'plain-secret', null);

-- 30 events from acme and 5 from globex in the last minute; 10 older ones from initech.
insert into events (id, tenant_id, type, payload, created_at)
select gen_random_uuid(), 'acme', 'order.created', jsonb_build_object('n', n), now() - interval '20 seconds'
from generate_series(1, 30) n;
insert into events (id, tenant_id, type, payload, created_at)
select gen_random_uuid(), 'globex', 'order.created', '{}', now() - interval '10 seconds'
from generate_series(1, 5);
insert into events (id, tenant_id, type, payload, created_at)
select gen_random_uuid(), 'initech', 'order.created', '{}', now() - interval '2 hours'
from generate_series(1, 10);

-- One delivery per acme event to each acme webhook; globex to its own.
insert into deliveries (id, event_id, webhook_id, tenant_id, status, attempt_count, created_at, updated_at)
select gen_random_uuid(), e.id, w.id, e.tenant_id,
       case when w.id = '${ids.failingWebhook}' then 'failed' else 'succeeded' end,
       1, e.created_at, e.created_at
from events e join webhooks w on w.tenant_id = e.tenant_id;

insert into delivery_attempts (delivery_id, attempt_number, attempted_at, status_code, error, duration_ms)
select d.id, 1, now() - interval '5 minutes',
       case when d.status = 'failed' then 503 else 200 end,
       case when d.status = 'failed' then 'HTTP 503: Service Unavailable' end,
       42
from deliveries d;

-- Three acme deliveries and one globex delivery are dead letters.
with dead as (
  select id from deliveries where webhook_id = '${ids.failingWebhook}' order by id limit 3
)
update deliveries set status = 'dead' where id in (select id from dead);
insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts)
select id, tenant_id, webhook_id, event_id, 'HTTP 503: Service Unavailable', 6
from deliveries where status = 'dead';
with dead as (select id from deliveries where webhook_id = '${ids.globexWebhook}' limit 1)
update deliveries set status = 'dead' where id in (select id from dead);
insert into dlq (delivery_id, tenant_id, webhook_id, event_id, last_error, attempts)
select id, tenant_id, webhook_id, event_id, 'timeout after 10000 ms', 6
from deliveries where status = 'dead' and tenant_id = 'globex';

-- Jobs for the failed (retry scheduled) deliveries: most due later, one due 10 minutes ago.
select graphile_worker.add_job('deliver', json_build_object('delivery_id', id, 'attempt', 2),
         run_at => now() + interval '1 hour', job_key => 'delivery:' || id)
from deliveries where status = 'failed';
update graphile_worker._private_jobs set run_at = now() - interval '10 minutes'
where id = (select min(id) from graphile_worker._private_jobs);

-- A pending delivery whose job is missing: the orphan the runbook must find.
insert into deliveries (id, event_id, webhook_id, tenant_id, status, created_at, updated_at)
select '${ids.orphanDelivery}', e.id, '${ids.healthyWebhook}', 'acme', 'pending',
       now() - interval '10 minutes', now() - interval '10 minutes'
from events e where e.tenant_id = 'acme' limit 1;

-- Two workers: worker-dead stopped beating an hour ago, worker-alive beats now.
insert into worker_heartbeats (worker_id, hostname, pid, started_at, last_seen_at) values
  ('worker-dead', 'host-a', 101, now() - interval '2 hours', now() - interval '1 hour'),
  ('worker-alive', 'host-b', 202, now() - interval '2 hours', now());
update graphile_worker._private_jobs
   set locked_by = 'worker-dead', locked_at = now() - interval '1 hour'
 where id in (select id from graphile_worker._private_jobs order by id offset 1 limit 2);
update graphile_worker._private_jobs
   set locked_by = 'worker-alive', locked_at = now() - interval '10 minutes'
 where id in (select id from graphile_worker._private_jobs order by id offset 3 limit 1);
insert into delivery_leases (delivery_id, tenant_id, worker_id, acquired_at)
select id, tenant_id, 'worker-dead', now() - interval '1 hour'
from deliveries where status = 'failed' order by id limit 1;
`;

let database: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  const version = await new Promise<string>((resolve, reject) =>
    execFile('psql', ['--version'], (err, stdout) =>
      err
        ? reject(
            new Error('psql is not installed: run `bash scripts/ci-tools.sh` (Debian postgresql-client)'),
          )
        : resolve(stdout.trim()),
    ),
  );
  process.stdout.write(`runbook SQL runs with ${version}\n`);
  database = await createTestDatabase();
  client = new pg.Client({ connectionString: database.url });
  await client.connect();
  await client.query(SEED);
});

afterAll(async () => {
  await client?.end();
  await database?.drop();
});

const lockedBy = async (worker: string) =>
  Number(
    (
      await client.query<{ n: string }>(
        'select count(*) as n from graphile_worker._private_jobs where locked_by = $1',
        [worker],
      )
    ).rows[0]!.n,
  );

describe('sql/runbook', () => {
  it('holds the queries the runbook promises, each opening with what it answers and how to run it', () => {
    for (const expected of [
      'queue-depth.sql',
      'dlq-by-tenant-and-webhook.sql',
      'top-tenants-last-minute.sql',
      'raise-tenant-quota.sql',
      'stuck-jobs.sql',
      'release-stuck-jobs.sql',
      'long-transactions.sql',
      'dead-tuples.sql',
      'table-sizes.sql',
      'failing-endpoints.sql',
      'retention.sql',
    ]) {
      expect(runbookFiles).toContain(expected);
    }
    for (const file of runbookFiles) {
      const text = fs.readFileSync(path.join(RUNBOOK_DIR, file), 'utf8');
      expect(text.startsWith('-- '), `${file} opens with a comment`).toBe(true);
      expect(text, `${file} says how to run it`).toMatch(
        /^-- Run: psql "\$DATABASE_URL" -X .*-f sql\/runbook\//m,
      );
      expect(text, `${file} names itself in its run line`).toContain(`sql/runbook/${file}`);
      expect(text, `${file} stops at the first error`).toContain('\\set ON_ERROR_STOP on');
    }
  });

  it('queue-depth.sql: counts due, scheduled and locked jobs and the oldest wait', async () => {
    const out = await runOk(database.url, 'queue-depth.sql');
    expect(out).toContain('deliver');
    expect(out).toMatch(/00:1\d:\d\d/); // the job due 10 minutes ago has waited ~10 minutes
    expect(out).toContain('delivery:');
  });

  it('orphaned-deliveries.sql: finds the pending delivery without a job, and nothing else', async () => {
    const out = await runOk(database.url, 'orphaned-deliveries.sql');
    expect(out).toContain(ids.orphanDelivery);
    expect(out).toContain('(1 row)');
  });

  it('dlq-by-tenant-and-webhook.sql: dead letters by tenant and by endpoint, without credentials', async () => {
    const out = await runOk(database.url, 'dlq-by-tenant-and-webhook.sql');
    expect(out).toMatch(/acme\s+\|\s+3\s+\|\s+100/);
    expect(out).toMatch(/globex\s+\|\s+1\s+\|/);
    expect(out).toContain('https://hooks.acme.test/in');
    expect(out).not.toContain('hunter2');
    expect(out).not.toContain('token=abc');
    expect(out).toContain('HTTP 503: Service Unavailable');

    const onlyGlobex = await runOk(database.url, 'dlq-by-tenant-and-webhook.sql', { tenant_id: 'globex' });
    expect(onlyGlobex).toContain('timeout after 10000 ms');
    expect(onlyGlobex).not.toMatch(/\bacme\b/);
  });

  it('top-tenants-last-minute.sql: the busiest tenant first, against its limit', async () => {
    const out = await runOk(database.url, 'top-tenants-last-minute.sql');
    const acme = out.indexOf('acme');
    const globex = out.indexOf('globex');
    expect(acme).toBeGreaterThan(-1);
    expect(globex).toBeGreaterThan(acme);
    expect(out).toMatch(/acme\s+\|\s+30\s+\|\s+0\.5\s+\|\s+100\s+\|/);
    expect(out).not.toContain('initech'); // its events are two hours old

    const lastThreeHours = await runOk(database.url, 'top-tenants-last-minute.sql', { period: '3 hours' });
    expect(lastThreeHours).toContain('initech');
  });

  it('failing-endpoints.sql: the failing webhook with its error, since when, and its backlog', async () => {
    const out = await runOk(database.url, 'failing-endpoints.sql', { period: '1 hour' });
    expect(out).toContain(ids.failingWebhook);
    expect(out).toContain('HTTP 503: Service Unavailable');
    expect(out).toMatch(/00:(19|20|21):\d\d/); // failing for ~20 minutes
    expect(out).not.toContain(ids.healthyWebhook);
    expect(out).not.toContain('hunter2');
  });

  it('stuck-jobs.sql: jobs locked by a worker that stopped beating, told apart from a live one', async () => {
    const out = await runOk(database.url, 'stuck-jobs.sql');
    const deadLines = out.split('\n').filter((line) => line.includes('worker-dead'));
    const aliveLines = out.split('\n').filter((line) => line.includes('worker-alive'));
    expect(deadLines.some((line) => /\|\s+t\s*$/.test(line))).toBe(true); // worker_looks_dead
    expect(aliveLines.some((line) => /\|\s+f\s*$/.test(line))).toBe(true);
  });

  it('release-stuck-jobs.sql: frees the dead worker’s jobs and leases, leaves the live worker’s', async () => {
    expect(await lockedBy('worker-dead')).toBe(2);
    expect(await lockedBy('worker-alive')).toBe(1);
    const out = await runOk(database.url, 'release-stuck-jobs.sql');
    expect(out).toContain('worker-dead');
    expect(out).not.toContain('worker-alive');
    expect(await lockedBy('worker-dead')).toBe(0);
    expect(await lockedBy('worker-alive')).toBe(1);
    const leases = await client.query(`select 1 from delivery_leases where worker_id = 'worker-dead'`);
    expect(leases.rowCount).toBe(0);

    // Naming a worker releases exactly that one.
    await runOk(database.url, 'release-stuck-jobs.sql', { worker_id: 'worker-alive' });
    expect(await lockedBy('worker-alive')).toBe(0);
  });

  it('long-transactions.sql and terminate-backend.sql: find an open transaction and end it', async () => {
    const holder = new pg.Client({ connectionString: database.url, application_name: 'held-open-by-test' });
    holder.on('error', () => undefined);
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select count(*) from events');
      const pid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
      // Its transaction must be older than the threshold: wait until the server says so.
      await waitFor(
        async () =>
          (
            await client.query(
              `select 1 from pg_stat_activity where pid = $1 and xact_start < now() - interval '1 second'`,
              [pid],
            )
          ).rowCount === 1 || undefined,
        5000,
        'the held transaction to be a second old',
      );

      const out = await runOk(database.url, 'long-transactions.sql', { older_than: '1 second' });
      expect(out).toContain('held-open-by-test');
      expect(out).toContain(String(pid));
      expect(out).toContain('max_connections');

      const ended = await runOk(database.url, 'terminate-backend.sql', { pid: String(pid) });
      expect(ended).toMatch(new RegExp(`${pid}\\s+\\|.*\\|\\s+t\\s*$`, 'm'));
      await waitFor(
        async () =>
          (await client.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount === 0 ||
          undefined,
        5000,
        'the session to end',
      );
      await expect(holder.query('select 1')).rejects.toThrow();
    } finally {
      await holder.end().catch(() => undefined);
    }
  });

  it('terminate-backend.sql without a pid stops with its usage and ends nothing', async () => {
    const result = await psql(database.url, 'terminate-backend.sql');
    expect(result.code).not.toBe(0);
    expect(result.stdout + result.stderr).toContain('usage:');
  });

  it('dead-tuples.sql: dead tuples per table, graphile-worker’s job table included', async () => {
    await client.query('analyze');
    const out = await runOk(database.url, 'dead-tuples.sql');
    expect(out).toContain('_private_jobs');
    expect(out).toContain('deliveries');
  });

  it('table-sizes.sql: sizes of our tables and the database', async () => {
    const out = await runOk(database.url, 'table-sizes.sql');
    for (const table of ['events', 'deliveries', 'delivery_attempts', 'dlq', '_private_jobs']) {
      expect(out).toContain(table);
    }
    expect(out).toContain(database.name);
  });

  it('raise-tenant-quota.sql: changes the given limits only, and audits the change', async () => {
    const out = await runOk(database.url, 'raise-tenant-quota.sql', {
      tenant_id: 'acme',
      max_events_per_sec: '500',
    });
    expect(out).toContain('Before:');
    expect(out).toContain('After:');
    const quota = await client.query(
      `select max_events_per_sec, max_concurrent_deliveries, max_dlq_size from quotas where tenant_id = 'acme'`,
    );
    expect(quota.rows[0]).toEqual({
      max_events_per_sec: 500,
      max_concurrent_deliveries: 50,
      max_dlq_size: 100,
    });
    const globex = await client.query(`select max_events_per_sec from quotas where tenant_id = 'globex'`);
    expect(globex.rows[0].max_events_per_sec).toBe(100);

    const audit = await client.query(
      `select actor, action, object_type, object_id, tenant_id, details from audit_log where action = 'quota.updated'`,
    );
    expect(audit.rows).toHaveLength(1);
    expect(audit.rows[0]).toMatchObject({
      actor: expect.stringMatching(/^psql:/),
      object_type: 'quota',
      object_id: 'acme',
      tenant_id: 'acme',
      details: {
        before: { max_events_per_sec: 100, max_concurrent_deliveries: 50, max_dlq_size: 100 },
        after: { max_events_per_sec: 500, max_concurrent_deliveries: 50, max_dlq_size: 100 },
      },
    });
  });

  it('raise-tenant-quota.sql refuses an unknown tenant, a missing tenant_id and no limit at all', async () => {
    const refused: Record<string, string>[] = [
      { tenant_id: 'no-such-tenant', max_events_per_sec: '1' },
      { max_events_per_sec: '1' },
      { tenant_id: 'acme' },
      { tenant_id: 'acme', max_events_per_sec: 'lots' },
    ];
    for (const variables of refused) {
      const result = await psql(database.url, 'raise-tenant-quota.sql', variables);
      expect(result.code, JSON.stringify(variables)).not.toBe(0);
    }
    const quota = await client.query(`select max_events_per_sec from quotas where tenant_id = 'acme'`);
    expect(quota.rows[0].max_events_per_sec).toBe(500);
    const noTenant = await client.query(`select 1 from quotas where tenant_id = 'no-such-tenant'`);
    expect(noTenant.rowCount).toBe(0);
  });

  it('retention.sql: what the next retention sweep would delete, and why old events stay', async () => {
    // Only initech's events (two hours old, no deliveries) are past an hour.
    const hour = await runOk(database.url, 'retention.sql', { retention: '1 hour' });
    expect(hour).toMatch(/^\s*events\s+\|\s+10\s*$/m);
    expect(hour).toMatch(/^\s*deliveries\s+\|\s+0\s*$/m);
    expect(hour).toMatch(/^\s*delivery_attempts\s+\|\s+0\s*$/m);
    expect(hour).toMatch(/^\s*idempotency_keys\s+\|\s+0\s*$/m);

    // Past a second: globex's four delivered events go too, with their deliveries and attempts;
    // acme's events stay (a dead letter, a delivery failed with its retry queued, the orphan),
    // but the attempts of their delivered deliveries go: 4 + 30.
    const second = await runOk(database.url, 'retention.sql', { retention: '1 second' });
    expect(second).toMatch(/^\s*events\s+\|\s+14\s*$/m);
    expect(second).toMatch(/^\s*deliveries\s+\|\s+4\s*$/m);
    expect(second).toMatch(/^\s*delivery_attempts\s+\|\s+34\s*$/m);
    expect(second).toMatch(/a dead letter in the DLQ\s+\|\s+4\s+\|/);
    expect(second).toMatch(/a delivery pending or failed \(retry scheduled\)\s+\|\s+27\s+\|/);
    expect(second).toContain('audit_log (kept for good)');
  });

  it('ran every file in sql/runbook/', () => {
    expect([...ran].sort()).toEqual(runbookFiles);
  });
});

describe('raise-tenant-quota.sql against a running service', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ROLE: 'api', NUM_WORKERS: '0' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('the service answers with the new limits at once, without a restart', async () => {
    const acme = await svc.token('acme');
    const before = await svc.call('GET', '/quotas/acme', { token: acme });
    expect(before.status).toBe(200);
    expect(before.body.limits).toEqual({
      max_events_per_sec: 100,
      max_concurrent_deliveries: 50,
      max_dlq_size: 100,
    });

    await runOk(svc.database.url, 'raise-tenant-quota.sql', {
      tenant_id: 'acme',
      max_events_per_sec: '750',
      max_concurrent_deliveries: '80',
    });
    const started = Date.now();
    const after = await waitFor(
      async () => {
        const res = await svc.call('GET', '/quotas/acme', { token: acme });
        return res.body?.limits?.max_events_per_sec === 750 ? res : undefined;
      },
      5000,
      'GET /quotas/acme to show the raised limit',
    );
    expect(after.body.limits).toEqual({
      max_events_per_sec: 750,
      max_concurrent_deliveries: 80,
      max_dlq_size: 100,
    });
    process.stdout.write(`raised quota visible through the API after ${Date.now() - started} ms\n`);
  });
});
