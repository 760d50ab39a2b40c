-- Webhooks still on http://.
-- Answers: which webhooks deliver over plain http, for which tenant, and whether they are
-- enabled. With WEBHOOK_HTTPS_ONLY (the production default) no new one can be registered and a
-- URL change must be https://, but those registered before keep being delivered until then:
-- ask their tenants to move them.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/http-webhooks.sql
--      optional: -v tenant_id=acme
\set ON_ERROR_STOP on
\if :{?tenant_id}
\else
  \set tenant_id ''
\endif

select w.tenant_id,
       w.id as webhook_id,
       -- No credentials, path or query: they may hold a secret.
       regexp_replace(w.url, '^([a-z]+://)([^@/]*@)?([^/?#]*).*$', '\1\3') as endpoint,
       w.enabled,
       w.created_at
from webhooks w
where w.url ilike 'http://%'
  and (:'tenant_id' = '' or w.tenant_id = :'tenant_id')
order by w.tenant_id, w.created_at;

select count(*) as http_webhooks,
       count(distinct tenant_id) as tenants
from webhooks
where url ilike 'http://%'
  and (:'tenant_id' = '' or tenant_id = :'tenant_id');
