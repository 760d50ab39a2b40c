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
import { parseDeliverPayload } from '../../src/delivery/enqueue.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { waitFor } from '../helpers/process.js';
import { RUNBOOK_DIR, runbookFiles, runbookPsql } from '../helpers/runbook.js';
import { startTestService, type TestService } from '../helpers/service.js';

const ran = new Set<string>();
async function runOk(url: string, file: string, variables: Record<string, string> = {}): Promise<string> {
  const result = await runbookPsql(url, file, variables);
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
  leasedByDeadWorker: '22222222-0000-4000-8000-0000000000d1',
  leasedByLiveWorker: '22222222-0000-4000-8000-0000000000a1',
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

-- Jobs for the 27 failed (retry scheduled) deliveries, in id order: the first 25 in five jobs
-- of five, as the service batches them, one due 10 minutes ago and the others in an hour; the
-- 26th in a job of the shape before batching, due 5 minutes ago; the 27th only in a job naming
-- its first attempt, made already (so the job will skip it: an orphan).
update deliveries set next_attempt_at = now() + interval '1 hour' where status = 'failed';
create temp table failed_in_order as
  select id, row_number() over (order by id) as n from deliveries where status = 'failed';
select graphile_worker.add_jobs(array(
  select row('deliver',
             json_build_object('tenant_id', 'acme', 'deliveries',
               json_agg(json_build_object('id', id, 'attempt', 2) order by n)),
             null, now() + interval '1 hour', 25, null, 0, array['t:acme'])::graphile_worker.job_spec
  from failed_in_order where n <= 25 group by (n - 1) / 5 order by (n - 1) / 5));
update graphile_worker._private_jobs set run_at = now() - interval '10 minutes'
where id = (select min(id) from graphile_worker._private_jobs);
update deliveries set next_attempt_at = now() - interval '10 minutes'
where id in (select (e->>'id')::uuid
             from graphile_worker._private_jobs j, json_array_elements(j.payload->'deliveries') e
             where j.id = (select min(id) from graphile_worker._private_jobs));
select graphile_worker.add_job('deliver', json_build_object('delivery_id', id, 'attempt', 2),
         run_at => now() - interval '5 minutes', job_key => 'delivery:' || id)
from failed_in_order where n = 26;
update deliveries set next_attempt_at = now() - interval '5 minutes'
where id = (select id from failed_in_order where n = 26);
select graphile_worker.add_job('deliver',
         json_build_object('tenant_id', 'acme', 'deliveries', json_build_array(json_build_object('id', id, 'attempt', 1))),
         run_at => now() + interval '1 hour', flags => array['t:acme'])
from failed_in_order where n = 27;
update deliveries set next_attempt_at = now() - interval '10 minutes', updated_at = now() - interval '10 minutes'
where id = (select id from failed_in_order where n = 27);
drop table failed_in_order;

-- A pending delivery whose job is missing: the orphan the runbook must find. Two more pending
-- ones of the same event without a job, each held by a worker's lease (in flight).
insert into deliveries (id, event_id, webhook_id, tenant_id, status, created_at, updated_at)
select d.id::uuid, e.id, '${ids.healthyWebhook}', 'acme', 'pending',
       now() - interval '10 minutes', now() - interval '10 minutes'
from (select id from events where tenant_id = 'acme' limit 1) e,
     unnest(array['${ids.orphanDelivery}', '${ids.leasedByDeadWorker}', '${ids.leasedByLiveWorker}']) d(id);

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
insert into delivery_leases (delivery_id, tenant_id, worker_id, acquired_at) values
  ('${ids.leasedByDeadWorker}', 'acme', 'worker-dead', now() - interval '1 hour'),
  ('${ids.leasedByLiveWorker}', 'acme', 'worker-alive', now() - interval '10 seconds');
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

/** The jobs (from graphile-worker's private table: the view has no payload) naming a delivery. */
const jobsNaming = async (deliveryId: string) =>
  (
    await client.query<{
      task_identifier: string;
      key: string | null;
      locked_at: Date | null;
      flags: Record<string, boolean> | null;
      due: boolean;
      payload: unknown;
    }>(
      `select t.identifier as task_identifier, j.key, j.locked_at, j.flags, j.run_at <= now() as due, j.payload
         from graphile_worker._private_jobs j
         join graphile_worker._private_tasks t on t.id = j.task_id
        where exists (select 1 from json_array_elements(j.payload->'deliveries') e where e->>'id' = $1)`,
      [deliveryId],
    )
  ).rows;

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
      'secrets-by-key.sql',
      'http-webhooks.sql',
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

  it('queue-depth.sql: counts waiting and in-flight deliveries, due, scheduled and locked jobs, and the oldest wait', async () => {
    const out = await runOk(database.url, 'queue-depth.sql');
    // Due: the orphan, the five of the job due 10 minutes ago, the one of the old-shape job and
    // the one whose job names a spent attempt; later: the other 20 failed; in flight: two leased.
    expect(out).toMatch(/^\s*\(all tenants\)\s+\|\s+8\s+\|\s+20\s+\|\s+2\s+\|\s*$/m);
    expect(out).toMatch(/^\s*acme\s+\|\s+8\s+\|\s+20\s+\|\s+2\s+\|\s+50\s*$/m);
    expect(out).not.toMatch(/^\s*globex\s+\|/m);
    expect(out).toMatch(/^\s*deliver\s+\|\s+2\s+\|\s+2\s+\|\s+3\s+\|\s+0\s+\|\s+00:1\d:\d\d\s+\|/m);
    // The oldest due jobs: the batch of five due 10 minutes ago, then the old-shape job of one,
    // each with its tenant (the old one's read from its delivery).
    const dueJobs = out.slice(out.indexOf('The ten oldest due delivery jobs'));
    expect(dueJobs).toMatch(/^\s*\d+\s+\|\s+acme\s+\|\s+5\s+\|\s+0\s+\|[^\n]*\|\s+00:1\d:\d\d\s+\|/m);
    expect(dueJobs).toMatch(/^\s*\d+\s+\|\s+acme\s+\|\s+1\s+\|\s+0\s+\|[^\n]*\|\s+00:0[45]:\d\d\s+\|/m);
    expect(dueJobs).toContain('(2 rows)');
  });

  it('orphaned-deliveries.sql: finds the deliveries no job (at their next attempt) or lease covers, and nothing else', async () => {
    const out = await runOk(database.url, 'orphaned-deliveries.sql');
    expect(out).toContain(ids.orphanDelivery);
    // The 27th failed delivery: its only job names attempt 1, made already.
    const namedAtSpentAttempt = await client.query<{ id: string }>(
      `select id from deliveries where status = 'failed' order by id offset 26 limit 1`,
    );
    expect(out).toContain(namedAtSpentAttempt.rows[0]!.id);
    // Not the 26th (named by a job of the shape before batching), nor the two leased ones.
    expect(out).not.toContain(ids.leasedByDeadWorker);
    expect(out).not.toContain(ids.leasedByLiveWorker);
    expect(out).toContain('(2 rows)');
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

  it('stuck-jobs.sql: jobs and leases held by a worker that stopped beating, told apart from a live one', async () => {
    const out = await runOk(database.url, 'stuck-jobs.sql');
    const deadLines = out.split('\n').filter((line) => line.includes('worker-dead'));
    const aliveLines = out.split('\n').filter((line) => line.includes('worker-alive'));
    expect(deadLines.some((line) => /\|\s+t\s*$/.test(line))).toBe(true); // worker_looks_dead
    expect(aliveLines.some((line) => /\|\s+f\s*$/.test(line))).toBe(true);
    // Each locked job with its tenant and the five deliveries it names.
    expect(deadLines.some((line) => /^\s*\d+\s+\|\s+acme\s+\|\s+5\s+\|\s+worker-dead\s+\|/.test(line))).toBe(
      true,
    );
    // The dead worker's lease, and not the live one's, among leases of workers without a fresh heartbeat.
    const deadWorkerLeases = out.slice(
      out.indexOf('Delivery leases held by workers with no heartbeat'),
      out.indexOf('Delivery leases (in-flight slots'),
    );
    expect(deadWorkerLeases).toMatch(/^\s*worker-dead\s+\|[^|]+\|\s+acme\s+\|\s+1\s+\|/m);
    expect(deadWorkerLeases).toContain(ids.leasedByDeadWorker);
    expect(deadWorkerLeases).not.toContain('worker-alive');
  });

  it('release-stuck-jobs.sql: frees the dead worker’s jobs and leases and queues its deliveries again, leaves the live worker’s', async () => {
    expect(await lockedBy('worker-dead')).toBe(2);
    expect(await lockedBy('worker-alive')).toBe(1);
    expect(await jobsNaming(ids.leasedByDeadWorker)).toEqual([]);
    const out = await runOk(database.url, 'release-stuck-jobs.sql');
    expect(out).toContain('worker-dead');
    expect(out).not.toContain('worker-alive');
    expect(out).toMatch(/^\s*1\s+\|\s+1\s+\|\s+1\s*$/m); // leases deleted, deliveries queued, jobs added
    expect(await lockedBy('worker-dead')).toBe(0);
    expect(await lockedBy('worker-alive')).toBe(1);
    const leases = await client.query(`select 1 from delivery_leases where worker_id = 'worker-dead'`);
    expect(leases.rowCount).toBe(0);
    // Its delivery in flight is queued again, due now, at the attempt it was making, in a job
    // the service reads.
    const [requeued] = await jobsNaming(ids.leasedByDeadWorker);
    expect(await jobsNaming(ids.leasedByDeadWorker)).toHaveLength(1);
    expect(requeued).toMatchObject({
      task_identifier: 'deliver',
      key: null,
      locked_at: null,
      flags: { 't:acme': true },
    });
    expect(requeued!.due).toBe(true);
    expect(parseDeliverPayload(requeued!.payload)).toEqual({
      tenant_id: 'acme',
      deliveries: [{ id: ids.leasedByDeadWorker, attempt: 1 }],
    });
    // So nothing is left orphaned.
    expect(await runOk(database.url, 'orphaned-deliveries.sql')).toContain('(2 rows)');

    // Naming a worker releases exactly that one.
    await runOk(database.url, 'release-stuck-jobs.sql', { worker_id: 'worker-alive' });
    expect(await lockedBy('worker-alive')).toBe(0);
    expect(await jobsNaming(ids.leasedByLiveWorker)).toHaveLength(1);
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
    const result = await runbookPsql(database.url, 'terminate-backend.sql');
    // The usage line alone, exit status 0, no SQL run (so no error either).
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(
      /^usage: psql "\$DATABASE_URL" -X -v pid=PID -f sql\/runbook\/terminate-backend\.sql .*\n$/,
    );
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
    // A young table is counted, not shown as the planner's "0" or "-1" before its first ANALYZE.
    const { rows } = await client.query<{ n: number }>('select count(*)::int as n from deliveries');
    expect(rows[0]!.n).toBeGreaterThan(0);
    const line = out.split('\n').find((l) => / deliveries +\|/.test(l));
    const cells = line!.split('|').map((cell) => cell.trim());
    expect(cells.slice(-2)).toEqual([String(rows[0]!.n), 'counted']);
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
    // A missing variable: the usage line alone, exit status 0, before any SQL.
    const usage =
      'usage: psql "$DATABASE_URL" -X -v tenant_id=ID [-v max_events_per_sec=N] [-v max_concurrent_deliveries=N] ' +
      '[-v max_dlq_size=N] -f sql/runbook/raise-tenant-quota.sql (tenant_id and at least one limit required)\n';
    const incomplete: Record<string, string>[] = [
      {},
      { max_events_per_sec: '1' },
      { max_dlq_size: '1' },
      { tenant_id: 'acme' },
    ];
    for (const variables of incomplete) {
      const result = await runbookPsql(database.url, 'raise-tenant-quota.sql', variables);
      expect(result, JSON.stringify(variables)).toEqual({ code: 0, stdout: usage, stderr: '' });
    }
    // A wrong value: an error, and nothing changed.
    const refused: Record<string, string>[] = [
      { tenant_id: 'no-such-tenant', max_events_per_sec: '1' },
      { tenant_id: 'acme', max_events_per_sec: 'lots' },
    ];
    for (const variables of refused) {
      const result = await runbookPsql(database.url, 'raise-tenant-quota.sql', variables);
      expect(result.code, JSON.stringify(variables)).not.toBe(0);
    }
    const unknown = await runbookPsql(database.url, 'raise-tenant-quota.sql', refused[0]!);
    expect(unknown.stderr).toContain('No tenant no-such-tenant: check the spelling');
    expect(unknown.stderr).not.toContain('division by zero');
    const quota = await client.query(`select max_events_per_sec from quotas where tenant_id = 'acme'`);
    expect(quota.rows[0].max_events_per_sec).toBe(500);
    const noTenant = await client.query(`select 1 from quotas where tenant_id = 'no-such-tenant'`);
    expect(noTenant.rowCount).toBe(0);
    const audit = await client.query(`select 1 from audit_log where action = 'quota.updated'`);
    expect(audit.rowCount).toBe(1);
  });

  it('raise-tenant-quota.sql: max_dlq_size alone is enough, the other limits keep their value', async () => {
    await runOk(database.url, 'raise-tenant-quota.sql', { tenant_id: 'globex', max_dlq_size: '250' });
    const quota = await client.query(
      `select max_events_per_sec, max_concurrent_deliveries, max_dlq_size from quotas where tenant_id = 'globex'`,
    );
    expect(quota.rows[0]).toEqual({
      max_events_per_sec: 100,
      max_concurrent_deliveries: 50,
      max_dlq_size: 250,
    });
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

  it('secrets-by-key.sql: webhooks per key id, plain-text rows apart, and per signature type', async () => {
    // The seed writes secrets with SQL, as before migration 012: plain text until a start-up.
    const out = await runOk(database.url, 'secrets-by-key.sql');
    expect(out).toMatch(/^\s*\(plain text\)\s+\|\s+3\s+\|\s+0\s*$/m);
    expect(out).toMatch(/^\s*hmac-sha256\s+\|\s+3\s*$/m);
    expect(out).not.toContain('whsec_');
  });

  it('http-webhooks.sql: none in the seed; an http one is listed without its path or credentials', async () => {
    expect(await runOk(database.url, 'http-webhooks.sql')).toMatch(/^\s*0\s+\|\s+0\s*$/m);
    try {
      await client.query(
        `update webhooks set url = 'http://user:pw@plain.acme.test/in?token=abc' where id = $1`,
        [ids.healthyWebhook],
      );
      const out = await runOk(database.url, 'http-webhooks.sql', { tenant_id: 'acme' });
      expect(out).toContain(ids.healthyWebhook);
      expect(out).toContain('http://plain.acme.test');
      expect(out).not.toMatch(/pw@|token=abc|\/in/);
      expect(out).toMatch(/^\s*1\s+\|\s+1\s*$/m);
    } finally {
      await client.query(`update webhooks set url = 'https://ok.acme.test/hook' where id = $1`, [
        ids.healthyWebhook,
      ]);
    }
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
