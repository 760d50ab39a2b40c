-- Stuck (locked) jobs.
-- Answers: which jobs have been locked by a worker for longer than any delivery attempt can
-- take (the longest per-attempt timeout is 30 s), which workers hold them, and whether those
-- workers still beat in worker_heartbeats. A job locked by a dead worker is not retried by
-- graphile-worker for 4 hours; the service's heartbeat sweeper releases it much sooner (see
-- docs/runbook.md). To release by hand: sql/runbook/release-stuck-jobs.sql.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/stuck-jobs.sql
--      optional: -v older_than='2 minutes'   (lock age that counts as stuck; default 5 minutes)
\set ON_ERROR_STOP on
\if :{?older_than}
\else
  \set older_than '5 minutes'
\endif

\echo 'Workers and what they hold:'
select
  coalesce(j.locked_by, h.worker_id) as worker_id,
  h.hostname,
  h.pid,
  h.last_seen_at,
  date_trunc('second', now() - h.last_seen_at) as silent_for,
  count(j.id) as locked_jobs,
  min(j.locked_at) as oldest_lock
from graphile_worker.jobs j
full join worker_heartbeats h on h.worker_id = j.locked_by
where j.id is null or j.locked_by is not null
group by coalesce(j.locked_by, h.worker_id), h.hostname, h.pid, h.last_seen_at
order by oldest_lock nulls last;

\echo 'Jobs locked longer than older_than:'
select
  j.id as job_id,
  j.key as job_key,
  j.locked_by,
  j.locked_at,
  date_trunc('second', now() - j.locked_at) as locked_for,
  j.attempts,
  h.last_seen_at as worker_last_seen,
  (h.last_seen_at is null or h.last_seen_at < now() - :'older_than'::interval) as worker_looks_dead
from graphile_worker.jobs j
left join worker_heartbeats h on h.worker_id = j.locked_by
where j.locked_at is not null
  and j.locked_at < now() - :'older_than'::interval
order by j.locked_at
limit 100;

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
