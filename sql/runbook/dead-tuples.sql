-- Dead tuples and vacuum on the hot tables.
-- Answers: which of our tables (and graphile-worker's job table, the hottest of all) carry many
-- dead row versions, when autovacuum last cleaned them, and what holds the xmin horizon back so
-- vacuum cannot (usually a long transaction: sql/runbook/long-transactions.sql).
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/dead-tuples.sql
\set ON_ERROR_STOP on

\echo 'Tables by dead tuples:'
select
  schemaname as schema,
  relname as table,
  n_live_tup as live_tuples,
  n_dead_tup as dead_tuples,
  round(100.0 * n_dead_tup / nullif(n_live_tup + n_dead_tup, 0), 1) as dead_pct,
  n_tup_ins as inserted,
  n_tup_upd + n_tup_hot_upd as updated,
  n_tup_del as deleted,
  last_autovacuum,
  last_vacuum,
  autovacuum_count,
  last_autoanalyze
from pg_stat_user_tables
where schemaname in ('public', 'graphile_worker')
order by n_dead_tup desc
limit 25;

\echo 'Oldest snapshots (the xmin horizon vacuum must respect):'
select
  pid,
  application_name,
  state,
  age(backend_xmin) as xmin_age,
  date_trunc('second', now() - xact_start) as transaction_age
from pg_stat_activity
where backend_xmin is not null
order by age(backend_xmin) desc
limit 5;

\echo 'Autovacuum workers running now:'
select
  p.pid,
  p.relid::regclass as table,
  p.phase,
  p.heap_blks_scanned,
  p.heap_blks_total,
  date_trunc('second', now() - a.xact_start) as running_for
from pg_stat_progress_vacuum p
join pg_stat_activity a using (pid);
