-- Table sizes.
-- Answers: how much disk each of our tables and graphile-worker's take (table, indexes, TOAST),
-- how many rows they hold, and the database's total size - for capacity planning and for
-- deciding when retention must run more often. Rows are counted exactly for tables under
-- 64 MB; larger ones show the planner's estimate (rows_are says which), which is "not analysed
-- yet" on a young table that autovacuum has not reached.
-- Run: psql "$DATABASE_URL" -X -f sql/runbook/table-sizes.sql
\set ON_ERROR_STOP on

select
  n.nspname as schema,
  c.relname as table,
  pg_size_pretty(pg_total_relation_size(c.oid)) as total,
  pg_size_pretty(pg_relation_size(c.oid)) as heap,
  pg_size_pretty(pg_indexes_size(c.oid)) as indexes,
  pg_size_pretty(pg_total_relation_size(c.oid) - pg_relation_size(c.oid) - pg_indexes_size(c.oid))
    as toast_and_maps,
  case
    when pg_relation_size(c.oid) < 64 * 1024 * 1024 then
      (xpath('/row/n/text()',
             query_to_xml(format('select count(*) as n from %I.%I', n.nspname, c.relname), false, true, '')
      ))[1]::text::bigint
    when c.reltuples >= 0 then c.reltuples::bigint
  end as rows,
  case
    when pg_relation_size(c.oid) < 64 * 1024 * 1024 then 'counted'
    when c.reltuples >= 0 then 'estimated'
    else 'not analysed yet'
  end as rows_are
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'm')
  and n.nspname in ('public', 'graphile_worker')
order by pg_total_relation_size(c.oid) desc
limit 40;

select
  current_database() as database,
  pg_size_pretty(pg_database_size(current_database())) as size;
