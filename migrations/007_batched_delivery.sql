-- Batched delivery. A graphile-worker job now names a batch of one tenant's deliveries
-- (payload {"tenant_id", "deliveries": [{"id", "attempt"}, ...]}), and a delivery_leases row is
-- what marks a delivery as in flight: its holder sends it and records the attempt, which deletes
-- the row. A lease held by someone else is never taken over; a dead worker's leases are deleted,
-- and their deliveries queued again, by the stale-worker sweep.
--
-- take_delivery_leases: leases for the deliveries given, each tenant up to its
-- max_concurrent_deliveries (default 50), in the order given; tenants are locked in id order so
-- two batches cannot deadlock. One row per delivery that is leased now: taken = true when this
-- call took it, false when someone already held it. A delivery missing from the answer was
-- refused by its tenant's cap, or (with p_attempts, the attempt each is to make) no longer due at
-- that attempt when the tenant's lock was taken: the caller's snapshot may be older than a
-- record that was committed meanwhile.
create function take_delivery_leases(
  p_worker_id text, p_delivery_ids uuid[], p_tenant_ids text[], p_attempts integer[] default null)
returns table (delivery_id uuid, taken boolean)
language plpgsql
-- delivery_leases churns: read it by index only (see migration 006).
set enable_seqscan = off
set enable_bitmapscan = off
as $$
#variable_conflict use_column
declare
  v_tenant text;
  v_limit integer;
  v_in_flight integer;
  v_ids uuid[];
  v_attempts integer[];
begin
  for v_tenant in select distinct t from unnest(p_tenant_ids) t order by 1 loop
    perform pg_advisory_xact_lock(hashtext('delivery_leases'), hashtext(v_tenant));
    select array_agg(d order by o), array_agg(a order by o) into v_ids, v_attempts
      from unnest(p_delivery_ids, p_tenant_ids,
                  coalesce(p_attempts, array_fill(null::integer, array[cardinality(p_delivery_ids)])))
           with ordinality as r(d, t, a, o)
     where t = v_tenant;
    return query
      select l.delivery_id, false from delivery_leases l where l.delivery_id = any (v_ids);
    select max_concurrent_deliveries into v_limit from quotas where tenant_id = v_tenant;
    select count(*) into v_in_flight from delivery_leases where tenant_id = v_tenant;
    return query
      insert into delivery_leases (delivery_id, tenant_id, worker_id)
      select d, v_tenant, p_worker_id
        from unnest(v_ids, v_attempts) with ordinality as r(d, a, o)
       where not exists (select 1 from delivery_leases l where l.delivery_id = r.d)
         and (p_attempts is null or exists (
               select 1 from deliveries x
                where x.id = r.d and x.attempt_count = r.a - 1 and x.status in ('pending', 'failed')))
       order by o
       limit greatest(0, coalesce(v_limit, 50) - v_in_flight)
      on conflict do nothing
      returning delivery_leases.delivery_id, true;
  end loop;
end;
$$;
comment on function take_delivery_leases(text, uuid[], text[], integer[]) is
  'Leases for a batch of deliveries about to be sent, each tenant up to its max_concurrent_deliveries; taken = false for one someone else already holds.';

-- The earlier forms answer the leases taken, by the same rule.
create or replace function acquire_delivery_leases(p_worker_id text, p_delivery_ids uuid[], p_tenant_ids text[])
returns setof uuid
language sql
as $$
  select delivery_id from take_delivery_leases(p_worker_id, p_delivery_ids, p_tenant_ids) where taken;
$$;
alter function acquire_delivery_leases(text, uuid[], text[]) reset all;
comment on function acquire_delivery_leases(text, uuid[], text[]) is
  'Leases for a batch of deliveries; returns those this call took (see take_delivery_leases).';

-- Ingestion in a delivering process (ROLE=all) leases new deliveries in the statement that
-- inserts them, and a lease taken inside take_delivery_leases cannot see rows that statement
-- is still inserting: the lease no longer references its delivery. A lease outlives its
-- delivery only until the attempt is recorded (which deletes it by delivery id) or its holder
-- is swept as dead.
alter table delivery_leases drop constraint delivery_leases_delivery_id_fkey;

-- Leases are inserted and deleted once per delivery; the index by worker served only the
-- stale-worker sweep, which reads a table as small as what is in flight.
drop index delivery_leases_worker_idx;
