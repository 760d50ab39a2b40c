-- What the next retention sweep would remove, and what it keeps past the retention period.
-- Answers: how many rows of events, deliveries, delivery_attempts and idempotency_keys the
-- sweep (every ROLE=all or ROLE=worker process, each RETENTION_SWEEP_MS) would delete if it ran
-- now; why the events older than the period that it keeps are kept; and the oldest row left in
-- each table. Changes nothing. The rules are those of src/retention/retention-repository.ts:
-- an event goes (with its deliveries and their attempts) when it is older than the period, has
-- no dead letter, and every delivery is finished (succeeded, or dead with its DLQ entry
-- deleted) and unchanged within the period (a job still naming a finished delivery skips it,
-- so it keeps nothing); an attempt older than the period goes when its delivery is finished and
-- not in the DLQ; an idempotency key after 24 hours.
-- Pass the deployment's RETENTION_DAYS as retention. RETENTION_DAYS=0 means no sweep runs at
-- all, whatever this file counts.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/retention.sql
--      optional: -v retention='90 days'   (default 30 days, the default RETENTION_DAYS)
\set ON_ERROR_STOP on
\if :{?retention}
\else
  \set retention '30 days'
\endif

\echo 'Rows the next sweep would delete (events with their deliveries and attempts, then old attempts):'
with cutoff as (
  select now() - :'retention'::interval as at
), removable_events as (
  select e.id
    from events e, cutoff c
   where e.created_at < c.at
     and not exists (select 1 from dlq q where q.event_id = e.id)
     and not exists (
           select 1 from deliveries d
            where d.event_id = e.id
              and (   d.status not in ('succeeded', 'dead')
                   or d.updated_at >= c.at
                   or exists (select 1 from dlq q where q.delivery_id = d.id)))
), their_deliveries as (
  select d.id from deliveries d where d.event_id in (select id from removable_events)
), old_attempts as (
  select a.id
    from delivery_attempts a, cutoff c
   where a.attempted_at < c.at
     and a.delivery_id not in (select id from their_deliveries)
     and exists (select 1 from deliveries d
                  where d.id = a.delivery_id and d.status in ('succeeded', 'dead'))
     and not exists (select 1 from dlq q where q.delivery_id = a.delivery_id)
)
select 'events' as table_name, (select count(*) from removable_events) as rows_to_delete
union all
select 'deliveries', (select count(*) from their_deliveries)
union all
select 'delivery_attempts',
       (select count(*) from delivery_attempts a where a.delivery_id in (select id from their_deliveries))
       + (select count(*) from old_attempts)
union all
select 'idempotency_keys',
       (select count(*) from idempotency_keys where created_at < now() - interval '24 hours');

\echo 'Events older than the period that are kept, by the first reason that keeps them:'
select
  reason,
  count(*) as events,
  min(created_at) as oldest
from (
  select
    e.created_at,
    case
      when exists (select 1 from dlq q where q.event_id = e.id) then 'a dead letter in the DLQ'
      when exists (select 1 from deliveries d
                    where d.event_id = e.id and d.status in ('pending', 'failed'))
        then 'a delivery pending or failed (retry scheduled)'
      when exists (select 1 from deliveries d where d.event_id = e.id and d.status = 'paused')
        then 'a delivery paused (webhook disabled)'
      when exists (select 1 from deliveries d
                    where d.event_id = e.id and d.updated_at >= now() - :'retention'::interval)
        then 'a delivery changed within the period'
    end as reason
  from events e
  where e.created_at < now() - :'retention'::interval
) kept
where reason is not null
group by reason
order by events desc;

\echo 'Oldest row left in each table (the sweep keeps these within about one period):'
select 'events' as table_name, min(created_at) as oldest, now() - min(created_at) as age from events
union all
select 'delivery_attempts', min(attempted_at), now() - min(attempted_at) from delivery_attempts
union all
select 'idempotency_keys', min(created_at), now() - min(created_at) from idempotency_keys
union all
select 'audit_log (kept for good)', min(at), now() - min(at) from audit_log;
