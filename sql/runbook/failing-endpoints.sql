-- Failing endpoints.
-- Answers: which webhooks are failing now (failing_since is set: every attempt since then
-- failed) or failed attempts recently, for which tenant, since when, with what error, and how
-- many deliveries wait behind them; then the recent failures grouped by error.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/failing-endpoints.sql
--      optional: -v period='1 hour'   (look-back for attempts; default 15 minutes)
--      optional: -v tenant_id=acme
\set ON_ERROR_STOP on
\if :{?period}
\else
  \set period '15 minutes'
\endif
\if :{?tenant_id}
\else
  \set tenant_id ''
\endif

\echo 'Webhooks failing now or with failed attempts in the period:'
with recent as (
  select
    d.webhook_id,
    count(*) as attempts,
    count(*) filter (where a.error is not null) as failed
  from delivery_attempts a
  join deliveries d on d.id = a.delivery_id
  where a.attempted_at > now() - :'period'::interval
  group by d.webhook_id
)
select
  w.tenant_id,
  w.id as webhook_id,
  regexp_replace(w.url, '^([a-z]+://)([^@/]*@)?([^?#]*).*$', '\1\3') as endpoint,
  w.enabled,
  w.failing_since,
  date_trunc('second', now() - w.failing_since) as failing_for,
  coalesce(r.failed, 0) as failed_attempts,
  coalesce(r.attempts, 0) as attempts,
  last_failure.status_code as last_status,
  left(last_failure.error, 80) as last_error,
  (select count(*) from deliveries b
    where b.webhook_id = w.id and b.status in ('pending', 'failed', 'paused')) as waiting_deliveries,
  (select count(*) from dlq x where x.webhook_id = w.id) as dead_letters
from webhooks w
left join recent r on r.webhook_id = w.id
left join lateral (
  select a.status_code, a.error
  from deliveries d
  join delivery_attempts a on a.delivery_id = d.id
  where d.webhook_id = w.id
    and a.error is not null
    and a.attempted_at > coalesce(w.failing_since, now() - :'period'::interval) - interval '1 second'
  order by a.attempted_at desc
  limit 1
) last_failure on true
where (w.failing_since is not null or r.failed > 0)
  and (:'tenant_id' = '' or w.tenant_id = :'tenant_id')
order by w.failing_since nulls last, r.failed desc nulls last
limit 50;

\echo 'Failed attempts in the period by error:'
select
  coalesce(a.status_code::text, 'no answer') as status,
  left(a.error, 60) as error,
  count(*) as attempts,
  count(distinct d.webhook_id) as webhooks,
  count(distinct d.tenant_id) as tenants
from delivery_attempts a
join deliveries d on d.id = a.delivery_id
where a.attempted_at > now() - :'period'::interval
  and a.error is not null
  and (:'tenant_id' = '' or d.tenant_id = :'tenant_id')
group by 1, 2
order by attempts desc
limit 20;
