-- Deliveries that wait for an attempt but that nothing will send.
-- Answers: is any pending or failed (retry scheduled) delivery held by no delivery lease (in
-- flight) and named at its next attempt (attempt_count + 1) by no graphile-worker job that can
-- still run (task deliver, payload {"tenant_id", "deliveries": [{"id", "attempt"}, ...]}, or the
-- older {"delivery_id", "attempt"})? A job naming another attempt skips the delivery, and one
-- that has given up (attempts spent) runs no more. Every writer commits the delivery row and
-- its job together, and a lease's holder (or the stale-worker sweep) queues the delivery
-- again, so this should be empty: rows here are a bug to report. Send a failed one again with
-- POST /deliveries/:id/retry (audited), not by inserting jobs by hand; that endpoint refuses a
-- pending one (409, as queued), so report those with their ids. A delivery of a FIFO webhook
-- (ordering 'fifo') waiting behind an earlier one of its webhook has no job by design: the
-- earlier one's end queues it. It is not listed; its webhook's first waiting delivery is.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/orphaned-deliveries.sql
--      optional: -v older_than='5 minutes'   (ignore deliveries changed more recently)
\set ON_ERROR_STOP on
\if :{?older_than}
\else
  \set older_than '1 minute'
\endif

with deliver_jobs as materialized (
  select j.payload
  from graphile_worker._private_jobs j
  join graphile_worker._private_tasks t on t.id = j.task_id and t.identifier = 'deliver'
  where j.attempts < j.max_attempts
), named as materialized (
  select (item->>'id')::uuid as delivery_id, (item->>'attempt')::int as attempt
  from deliver_jobs,
       json_array_elements(case when json_typeof(payload->'deliveries') = 'array'
                                then payload->'deliveries' end) item
  union
  select (payload->>'delivery_id')::uuid, (payload->>'attempt')::int
  from deliver_jobs
  where payload->>'delivery_id' is not null
)
select
  d.tenant_id,
  d.webhook_id,
  d.id as delivery_id,
  d.status,
  d.attempt_count,
  d.next_attempt_at,
  d.updated_at
from deliveries d
where d.status in ('pending', 'failed')
  and d.updated_at < now() - :'older_than'::interval
  and not exists (select 1 from delivery_leases l where l.delivery_id = d.id)
  and not exists (select 1 from named n where n.delivery_id = d.id and n.attempt = d.attempt_count + 1)
  and not exists (select 1 from deliveries p
                  where p.webhook_id = d.webhook_id and p.fifo_seq < d.fifo_seq
                    and p.fifo_seq is not null and p.status in ('pending', 'failed', 'paused'))
order by d.updated_at
limit 100;
