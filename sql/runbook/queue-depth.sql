-- Queue depth: the deliveries waiting to be sent, and the jobs that carry them.
-- Answers: how many deliveries wait to be sent (due now, or failed with a retry scheduled
-- later) and how many are in flight (a lease each), in all and for the ten tenants with the most
-- waiting, with their max_concurrent_deliveries; how many delivery jobs are due and waiting
-- for a worker, scheduled for later, locked (a worker is loading the batch: a job is done once
-- its deliveries are leased) or given up, and how long the oldest due job has waited; and the
-- ten oldest due jobs, each with its tenant and how many deliveries it names (a job names up
-- to 200 of one tenant's). The same figures as the metrics webhook_queue_depth (due_waiting +
-- retry_later, all tenants) and webhook_queue_oldest_job_age_seconds.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/queue-depth.sql
\set ON_ERROR_STOP on

\echo 'Deliveries waiting to be sent (webhook_queue_depth = due_waiting + retry_later of all tenants), and in flight;'
\echo 'all tenants first, then the ten with the most waiting:'
with by_tenant as (
  -- Through deliveries_tenant_status_idx, a tenant at a time: only unfinished deliveries are read.
  select t.id as tenant_id, w.due_waiting, w.retry_later, w.in_flight
  from tenants t
  cross join lateral (
    select
      count(*) filter (where l.delivery_id is null
                         and (d.status = 'pending' or coalesce(d.next_attempt_at, now()) <= now())) as due_waiting,
      count(*) filter (where l.delivery_id is null
                         and d.status = 'failed' and d.next_attempt_at > now()) as retry_later,
      count(l.delivery_id) as in_flight
    from deliveries d
    left join delivery_leases l on l.delivery_id = d.id
    where d.tenant_id = t.id and d.status in ('pending', 'failed')
  ) w
), top_tenants as (
  select b.*, coalesce(q.max_concurrent_deliveries, 50) as max_concurrent_deliveries
  from by_tenant b
  left join quotas q on q.tenant_id = b.tenant_id
  where b.due_waiting + b.retry_later + b.in_flight > 0
  order by b.due_waiting + b.retry_later desc, b.tenant_id
  limit 10
)
select tenant_id, due_waiting, retry_later, in_flight, max_concurrent_deliveries
from (
  select 0 as part, '(all tenants)' as tenant_id, coalesce(sum(due_waiting), 0) as due_waiting,
         coalesce(sum(retry_later), 0) as retry_later, coalesce(sum(in_flight), 0) as in_flight,
         null::integer as max_concurrent_deliveries
  from by_tenant
  union all
  select 1, tenant_id, due_waiting, retry_later, in_flight, max_concurrent_deliveries from top_tenants
) rows
order by part, due_waiting + retry_later desc, tenant_id;

\echo 'Jobs by task and state (graphile_worker.jobs):'
select
  task_identifier as task,
  count(*) filter (where locked_at is null and attempts < max_attempts and run_at <= now()) as due_waiting,
  count(*) filter (where locked_at is null and attempts < max_attempts and run_at > now()) as scheduled_later,
  count(*) filter (where locked_at is not null) as locked,
  count(*) filter (where attempts >= max_attempts) as given_up,
  date_trunc('second', max(now() - run_at)
    filter (where locked_at is null and attempts < max_attempts and run_at <= now())) as oldest_due_waited,
  min(run_at) filter (where locked_at is null and attempts < max_attempts and run_at > now()) as next_scheduled_at
from graphile_worker.jobs
group by task_identifier
order by task_identifier;

\echo 'The ten oldest due delivery jobs, with the tenant and how many deliveries each names:'
select
  j.id as job_id,
  -- A job queued before batching ({"delivery_id", "attempt"}) names one delivery, not its tenant.
  coalesce(j.payload->>'tenant_id', d.tenant_id) as tenant_id,
  case when json_typeof(j.payload->'deliveries') = 'array'
       then json_array_length(j.payload->'deliveries') else 1 end as deliveries,
  j.priority,
  j.run_at,
  date_trunc('second', now() - j.run_at) as waited,
  j.attempts,
  left(j.last_error, 120) as last_error
from graphile_worker._private_jobs j
join graphile_worker._private_tasks t on t.id = j.task_id and t.identifier = 'deliver'
left join deliveries d on d.id = (j.payload->>'delivery_id')::uuid
where j.locked_at is null
  and j.attempts < j.max_attempts
  and j.run_at <= now()
order by j.priority, j.run_at
limit 10;
