-- The dead-letter queue by tenant and by webhook.
-- Answers: who holds dead letters (against their max_dlq_size), which endpoints produced them,
-- since when, and with which last error. Retry or delete them through the API
-- (POST /dlq/retry, POST /dlq/:delivery_id/retry, DELETE /dlq/:delivery_id), which audits it.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/dlq-by-tenant-and-webhook.sql
--      optional: -v tenant_id=acme   (only that tenant)
\set ON_ERROR_STOP on
\if :{?tenant_id}
\else
  \set tenant_id ''
\endif

\echo 'Dead letters by tenant:'
select
  d.tenant_id,
  count(*) as dead_letters,
  coalesce(q.max_dlq_size, 100) as max_dlq_size,
  min(d.created_at) as oldest,
  max(d.created_at) as newest
from dlq d
left join quotas q on q.tenant_id = d.tenant_id
where :'tenant_id' = '' or d.tenant_id = :'tenant_id'
group by d.tenant_id, q.max_dlq_size
order by dead_letters desc
limit 50;

\echo 'Dead letters by webhook (endpoint shown without query string or credentials):'
select
  d.tenant_id,
  d.webhook_id,
  regexp_replace(w.url, '^([a-z]+://)([^@/]*@)?([^?#]*).*$', '\1\3') as endpoint,
  w.enabled,
  count(*) as dead_letters,
  max(d.created_at) as newest,
  (array_agg(d.last_error order by d.created_at desc))[1] as latest_error
from dlq d
join webhooks w on w.id = d.webhook_id
where :'tenant_id' = '' or d.tenant_id = :'tenant_id'
group by d.tenant_id, d.webhook_id, w.url, w.enabled
order by dead_letters desc
limit 50;

\echo 'Dead letters of the last 24 hours by error:'
select
  left(d.last_error, 80) as last_error,
  count(*) as dead_letters,
  count(distinct d.tenant_id) as tenants,
  count(distinct d.webhook_id) as webhooks
from dlq d
where d.created_at > now() - interval '24 hours'
  and (:'tenant_id' = '' or d.tenant_id = :'tenant_id')
group by left(d.last_error, 80)
order by dead_letters desc
limit 20;
