-- Deliveries that wait for an attempt but have no job.
-- Answers: is any pending or failed (retry scheduled) delivery missing its graphile-worker job
-- (job_key delivery:<id>), so that nothing would ever send it? Every writer commits the
-- delivery row and its job together, so this should be empty: rows here are a bug to report.
-- Send one again with POST /deliveries/:id/retry (audited), not by inserting jobs by hand.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/orphaned-deliveries.sql
--      optional: -v older_than='5 minutes'   (ignore deliveries changed more recently)
\set ON_ERROR_STOP on
\if :{?older_than}
\else
  \set older_than '1 minute'
\endif

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
  and not exists (
    select 1 from graphile_worker.jobs j where j.key = 'delivery:' || d.id::text
  )
order by d.updated_at
limit 100;
