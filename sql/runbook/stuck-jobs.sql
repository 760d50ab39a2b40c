-- Stuck jobs and delivery leases.
-- Answers: which workers hold what (locked jobs, delivery leases) and whether they still beat
-- in worker_heartbeats; which jobs have been locked longer than older_than (a worker locks a
-- job only while it loads the batch and leases its deliveries, well under a second, so a long
-- lock is a worker that died or hung there); which delivery leases are held by workers with no
-- heartbeat fresher than older_than (a lease marks a delivery in flight until its attempt is
-- recorded: nothing else sends it meanwhile); and which leases are older than older_than (an
-- attempt takes at most its timeout, 30 s at the longest). graphile-worker would leave a dead
-- worker's jobs locked for 4 hours; the service's heartbeat sweeper releases its jobs and
-- leases, and queues the leased deliveries again, much sooner (see docs/runbook.md). To
-- release by hand: sql/runbook/release-stuck-jobs.sql.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/stuck-jobs.sql
--      optional: -v older_than='2 minutes'   (lock, lease or heartbeat age that counts as stuck; default 5 minutes)
\set ON_ERROR_STOP on
\if :{?older_than}
\else
  \set older_than '5 minutes'
\endif

\echo 'Workers and what they hold:'
select *
from (
  select
    w.worker_id,
    h.hostname,
    h.pid,
    h.last_seen_at,
    date_trunc('second', now() - h.last_seen_at) as silent_for,
    (select count(*) from graphile_worker.jobs j where j.locked_by = w.worker_id) as locked_jobs,
    (select min(j.locked_at) from graphile_worker.jobs j where j.locked_by = w.worker_id) as oldest_lock,
    (select count(*) from delivery_leases l where l.worker_id = w.worker_id) as leases,
    (select min(l.acquired_at) from delivery_leases l where l.worker_id = w.worker_id) as oldest_lease
  from (
    select locked_by as worker_id from graphile_worker.jobs where locked_by is not null
    union
    select worker_id from delivery_leases
    union
    select worker_id from worker_heartbeats
  ) w
  left join worker_heartbeats h on h.worker_id = w.worker_id
) holders
order by least(oldest_lock, oldest_lease) nulls last, worker_id;

\echo 'Jobs locked longer than older_than (tenant, and how many deliveries each names):'
select
  j.id as job_id,
  -- A job queued before batching ({"delivery_id", "attempt"}) names one delivery, not its tenant.
  coalesce(j.payload->>'tenant_id', d.tenant_id) as tenant_id,
  case when json_typeof(j.payload->'deliveries') = 'array'
       then json_array_length(j.payload->'deliveries') else 1 end as deliveries,
  j.locked_by,
  j.locked_at,
  date_trunc('second', now() - j.locked_at) as locked_for,
  j.attempts,
  h.last_seen_at as worker_last_seen,
  (h.last_seen_at is null or h.last_seen_at < now() - :'older_than'::interval) as worker_looks_dead
from graphile_worker._private_jobs j
join graphile_worker._private_tasks t on t.id = j.task_id and t.identifier = 'deliver'
left join deliveries d on d.id = (j.payload->>'delivery_id')::uuid
left join worker_heartbeats h on h.worker_id = j.locked_by
where j.locked_at is not null
  and j.locked_at < now() - :'older_than'::interval
order by j.locked_at
limit 100;

\echo 'Delivery leases held by workers with no heartbeat fresher than older_than (their deliveries wait for a release):'
select
  l.worker_id,
  h.last_seen_at as worker_last_seen,
  l.tenant_id,
  count(*) as leases,
  min(l.acquired_at) as oldest,
  (array_agg(l.delivery_id order by l.acquired_at, l.delivery_id))[1:3] as first_deliveries
from delivery_leases l
left join worker_heartbeats h on h.worker_id = l.worker_id
where h.last_seen_at is null or h.last_seen_at < now() - :'older_than'::interval
group by l.worker_id, h.last_seen_at, l.tenant_id
order by oldest;

\echo 'Delivery leases (in-flight slots counted against max_concurrent_deliveries) older than older_than:'
select
  l.tenant_id,
  l.worker_id,
  count(*) as leases,
  min(l.acquired_at) as oldest
from delivery_leases l
where l.acquired_at < now() - :'older_than'::interval
group by l.tenant_id, l.worker_id
order by oldest;
