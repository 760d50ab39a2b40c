-- Raise (or lower) a tenant's quota.
-- Answers: "this tenant's legitimate traffic needs a higher limit now". Changes the row in
-- quotas, which every process reads for each decision (no restart); the quotas_audit trigger
-- writes the audit_log row (actor psql:<database user>, action quota.updated) in the same
-- transaction, as it does for any UPDATE quotas (actor db:<database user> then).
-- Limits left out keep their value. The tenant must exist (it is created on its first request).
-- Run: psql "$DATABASE_URL" -X -v tenant_id=acme -v max_events_per_sec=500 -f sql/runbook/raise-tenant-quota.sql
--      required: -v tenant_id=ID, and at least one limit of
--                -v max_events_per_sec=N  -v max_concurrent_deliveries=N  -v max_dlq_size=N
--      Run without them, it prints its usage line and stops (exit status 0) before any SQL.
-- The same change through the API: PUT /quotas/:tenant_id with an admin token.
\set ON_ERROR_STOP on
\set usage 'usage: psql "$DATABASE_URL" -X -v tenant_id=ID [-v max_events_per_sec=N] [-v max_concurrent_deliveries=N] [-v max_dlq_size=N] -f sql/runbook/raise-tenant-quota.sql (tenant_id and at least one limit required)'
\if :{?tenant_id}
\else
  \echo :usage
  \quit
\endif
-- At least one limit: any of the three will do.
\if :{?max_events_per_sec}
\elif :{?max_concurrent_deliveries}
\elif :{?max_dlq_size}
\else
  \echo :usage
  \quit
\endif
-- The limits left out keep their value.
\if :{?max_events_per_sec}
\else
  \set max_events_per_sec ''
\endif
\if :{?max_concurrent_deliveries}
\else
  \set max_concurrent_deliveries ''
\endif
\if :{?max_dlq_size}
\else
  \set max_dlq_size ''
\endif

select count(*) = 0 as tenant_missing from tenants where id = :'tenant_id' \gset
\if :tenant_missing
  -- Stops here with an error naming the tenant (exit status 3).
  select set_config('hookrelay.unknown_tenant', :'tenant_id', false) \gset
  do $$ begin
    raise exception 'No tenant %: check the spelling (tenants are created on their first request).',
      current_setting('hookrelay.unknown_tenant');
  end $$;
\endif

begin;

\echo 'Before:'
select tenant_id, max_events_per_sec, max_concurrent_deliveries, max_dlq_size, updated_at
from quotas where tenant_id = :'tenant_id';

-- The quotas_audit trigger writes the audit row; this names who and how.
select set_config('hookrelay.actor', 'psql:' || current_user, true),
       set_config('hookrelay.via', 'sql/runbook/raise-tenant-quota.sql', true);

insert into quotas (tenant_id, max_events_per_sec, max_concurrent_deliveries, max_dlq_size)
values (
  :'tenant_id',
  coalesce(nullif(:'max_events_per_sec', '')::integer, 100),
  coalesce(nullif(:'max_concurrent_deliveries', '')::integer, 50),
  coalesce(nullif(:'max_dlq_size', '')::integer, 100)
)
on conflict (tenant_id) do update set
  max_events_per_sec = coalesce(nullif(:'max_events_per_sec', '')::integer, quotas.max_events_per_sec),
  max_concurrent_deliveries = coalesce(nullif(:'max_concurrent_deliveries', '')::integer, quotas.max_concurrent_deliveries),
  max_dlq_size = coalesce(nullif(:'max_dlq_size', '')::integer, quotas.max_dlq_size),
  updated_at = now();

\echo 'After:'
select tenant_id, max_events_per_sec, max_concurrent_deliveries, max_dlq_size, updated_at
from quotas where tenant_id = :'tenant_id';

commit;
