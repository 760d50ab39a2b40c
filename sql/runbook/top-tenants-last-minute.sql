-- Top tenants by events accepted in the last minute.
-- Answers: who sends the most right now, at what rate, and how close that is to their
-- max_events_per_sec (a tenant at 100% is being answered 429).
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/top-tenants-last-minute.sql
--      optional: -v period='5 minutes'   (another look-back than one minute)
\set ON_ERROR_STOP on
\if :{?period}
\else
  \set period '1 minute'
\endif

select
  e.tenant_id,
  count(*) as events,
  round(count(*) / extract(epoch from :'period'::interval), 1) as events_per_sec,
  coalesce(q.max_events_per_sec, 100) as max_events_per_sec,
  round(100.0 * count(*) / extract(epoch from :'period'::interval)
        / nullif(coalesce(q.max_events_per_sec, 100), 0)) as pct_of_limit
from events e
left join quotas q on q.tenant_id = e.tenant_id
where e.created_at > now() - :'period'::interval
group by e.tenant_id, q.max_events_per_sec
order by events desc
limit 20;
