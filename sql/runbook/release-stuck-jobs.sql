-- Release the jobs and delivery leases held by dead workers, and queue their deliveries again.
-- Answers: "workers died and their deliveries are stuck". Does by hand what the service's
-- heartbeat sweeper does: for every worker whose heartbeat is older than older_than (or that
-- has none) and that holds a job lock or a lease older than older_than,
-- graphile_worker.force_unlock_workers makes its jobs available again, its rows in
-- delivery_leases are deleted, and each of those deliveries still pending or failed is queued
-- again at the attempt it was making (attempt_count + 1), in jobs of the service's shape (task
-- deliver, one tenant's deliveries each, at most 200, flag t:<tenant>; src/delivery/enqueue.ts),
-- due now and first in line (priority 0). A delivery released from a worker that was in fact
-- alive may be sent twice; receivers de-duplicate on webhook-id, and its attempt is recorded
-- once.
-- Look first with sql/runbook/stuck-jobs.sql.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/release-stuck-jobs.sql
--      optional: -v older_than='2 minutes'   (default 5 minutes)
--      or:       -v worker_id=worker-123abc  (release exactly that worker, whatever its age)
\set ON_ERROR_STOP on
\if :{?older_than}
\else
  \set older_than '5 minutes'
\endif
\if :{?worker_id}
\else
  \set worker_id ''
\endif

begin;

create temp table released_workers on commit drop as
with fresh as (
  select worker_id from worker_heartbeats
  where last_seen_at > now() - :'older_than'::interval
)
select worker_id from (
  select :'worker_id' as worker_id where :'worker_id' <> ''
  union
  select locked_by from graphile_worker.jobs
  where :'worker_id' = ''
    and locked_by is not null
    and locked_at < now() - :'older_than'::interval
    and locked_by not in (select worker_id from fresh)
  union
  select worker_id from delivery_leases
  where :'worker_id' = ''
    and acquired_at < now() - :'older_than'::interval
    and worker_id not in (select worker_id from fresh)
) stale;

\echo 'Releasing:'
select
  r.worker_id,
  (select count(*) from graphile_worker.jobs j where j.locked_by = r.worker_id) as locked_jobs,
  (select count(*) from delivery_leases l where l.worker_id = r.worker_id) as leases
from released_workers r
order by r.worker_id;

select graphile_worker.force_unlock_workers(array(select worker_id from released_workers))
  as jobs_unlocked;

\echo 'Deliveries in flight on them, queued again:'
with released as (
  delete from delivery_leases
  where worker_id in (select worker_id from released_workers)
  returning delivery_id
), due as (
  select d.id, d.tenant_id, d.attempt_count + 1 as attempt,
         (row_number() over (partition by d.tenant_id order by d.id) - 1) / 200 as chunk
  from deliveries d
  where d.id in (select delivery_id from released)
    and d.status in ('pending', 'failed')
), added as (
  select * from graphile_worker.add_jobs(array(
    select deliver_job_spec(tenant_id, json_agg(json_build_object('id', id, 'attempt', attempt) order by id),
                            now(), 0)
    from due
    group by tenant_id, chunk
  ))
)
select
  (select count(*) from released) as leases_deleted,
  (select count(*) from due) as deliveries_queued,
  (select count(*) from added) as jobs_added;

delete from worker_heartbeats where worker_id in (select worker_id from released_workers);

commit;
