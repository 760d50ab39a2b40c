-- Long transactions and who is connected.
-- Answers: which sessions have had a transaction open for longer than older_than (they hold
-- back vacuum on the hot tables, so dead tuples pile up and queries slow down), which are
-- waiting on locks, and how the connections are spread. End one with
-- sql/runbook/terminate-backend.sql.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/long-transactions.sql
--      optional: -v older_than='30 seconds'   (default 1 minute)
\set ON_ERROR_STOP on
\if :{?older_than}
\else
  \set older_than '1 minute'
\endif

\echo 'Transactions open longer than older_than (oldest first):'
select
  pid,
  usename as db_user,
  application_name,
  client_addr,
  state,
  date_trunc('second', now() - xact_start) as transaction_age,
  date_trunc('second', now() - state_change) as in_state_for,
  wait_event_type,
  wait_event,
  age(backend_xmin) as xmin_age,
  left(regexp_replace(query, '\s+', ' ', 'g'), 160) as last_query
from pg_stat_activity
where xact_start is not null
  and xact_start < now() - :'older_than'::interval
  and pid <> pg_backend_pid()
order by xact_start
limit 50;

\echo 'Sessions waiting on a lock, and who blocks them:'
select
  pid,
  pg_blocking_pids(pid) as blocked_by,
  date_trunc('second', now() - query_start) as waiting_for,
  left(regexp_replace(query, '\s+', ' ', 'g'), 160) as query
from pg_stat_activity
where cardinality(pg_blocking_pids(pid)) > 0
order by query_start
limit 50;

\echo 'Connections by database, application and state:'
select
  datname as database,
  application_name,
  coalesce(state, backend_type) as state,
  count(*) as connections
from pg_stat_activity
group by datname, application_name, coalesce(state, backend_type)
order by connections desc;

select current_setting('max_connections')::int as max_connections,
       (select count(*) from pg_stat_activity where backend_type = 'client backend') as client_connections;

\echo 'Other holders of the xmin horizon (replication slots, prepared transactions):'
select 'replication slot' as kind, slot_name as name, active::text as detail, age(xmin) as xmin_age
from pg_replication_slots where xmin is not null
union all
select 'prepared transaction', gid, owner::text, age(transaction)
from pg_prepared_xacts
order by xmin_age desc nulls last;
