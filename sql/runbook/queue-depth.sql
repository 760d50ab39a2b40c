-- Queue depth and the oldest waiting job.
-- Answers: how many delivery jobs are due and waiting for a worker, how many are scheduled for
-- later (retries), how many are running (locked), and how long the oldest due job has waited.
-- The same figures as the metrics webhook_queue_depth and webhook_queue_oldest_job_age_seconds.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/queue-depth.sql
\set ON_ERROR_STOP on

\echo 'Jobs by task and state (graphile_worker.jobs):'
select
  task_identifier as task,
  count(*) filter (where locked_at is null and attempts < max_attempts and run_at <= now()) as due_waiting,
  count(*) filter (where locked_at is null and attempts < max_attempts and run_at > now()) as scheduled_later,
  count(*) filter (where locked_at is not null) as locked_running,
  count(*) filter (where attempts >= max_attempts) as given_up,
  date_trunc('second', max(now() - run_at)
    filter (where locked_at is null and attempts < max_attempts and run_at <= now())) as oldest_due_waited,
  min(run_at) filter (where locked_at is null and attempts < max_attempts and run_at > now()) as next_scheduled_at
from graphile_worker.jobs
group by task_identifier
order by task_identifier;

\echo 'The ten oldest due jobs (job key delivery:<id> names the delivery):'
select
  id as job_id,
  key as job_key,
  priority,
  run_at,
  date_trunc('second', now() - run_at) as waited,
  attempts,
  left(last_error, 120) as last_error
from graphile_worker.jobs
where locked_at is null
  and attempts < max_attempts
  and run_at <= now()
order by priority, run_at
limit 10;
