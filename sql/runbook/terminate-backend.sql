-- End one database session (and roll back its open transaction).
-- Answers: "this session from long-transactions.sql holds back vacuum or blocks others: end it".
-- Only client sessions are ended; nothing happens if the pid is gone. If it belongs to one of our
-- processes, its pool opens a fresh connection; the interrupted work is retried as a failed one.
-- Run: psql "$DATABASE_URL" -X -v pid=12345 -f sql/runbook/terminate-backend.sql
--      required: -v pid=PID (from sql/runbook/long-transactions.sql)
--      Run without it, it prints its usage line and stops (exit status 0) before any SQL.
\set ON_ERROR_STOP on
\if :{?pid}
\else
  \echo 'usage: psql "$DATABASE_URL" -X -v pid=PID -f sql/runbook/terminate-backend.sql (pid required: find it with sql/runbook/long-transactions.sql)'
  \quit
\endif

select
  a.pid,
  a.usename as db_user,
  a.application_name,
  a.state,
  date_trunc('second', now() - a.xact_start) as transaction_age,
  pg_terminate_backend(a.pid) as terminated
from pg_stat_activity a
where a.pid = :'pid'::integer
  and a.backend_type = 'client backend'
  and a.pid <> pg_backend_pid();
