-- Leases for many deliveries in one call: a worker claims a batch of attempts in one statement
-- and takes their tenants' in-flight slots here. Tenants are locked in a fixed order (by id),
-- so two batches that share tenants cannot deadlock. Within a tenant, deliveries are leased in
-- the order given until the tenant reaches max_concurrent_deliveries (default 50).
-- Returns the deliveries that hold a lease (also those that already held one).
create function acquire_delivery_leases(p_worker_id text, p_delivery_ids uuid[], p_tenant_ids text[])
returns setof uuid
language plpgsql
as $$
declare
  v_tenant text;
  v_limit integer;
  v_in_flight integer;
  v_ids uuid[];
begin
  for v_tenant in select distinct t from unnest(p_tenant_ids) t order by 1 loop
    perform pg_advisory_xact_lock(hashtext('delivery_leases'), hashtext(v_tenant));
    select array_agg(d order by o) into v_ids
      from unnest(p_delivery_ids, p_tenant_ids) with ordinality as r(d, t, o)
     where t = v_tenant;
    -- A re-run of a claimed attempt keeps its lease.
    return query
      update delivery_leases set worker_id = p_worker_id, acquired_at = now()
       where delivery_id = any (v_ids)
      returning delivery_id;
    select max_concurrent_deliveries into v_limit from quotas where tenant_id = v_tenant;
    select count(*) into v_in_flight from delivery_leases where tenant_id = v_tenant;
    return query
      insert into delivery_leases (delivery_id, tenant_id, worker_id)
      select d, v_tenant, p_worker_id
        from unnest(v_ids) with ordinality as r(d, o)
       where not exists (select 1 from delivery_leases l where l.delivery_id = r.d)
       order by o
       limit greatest(0, coalesce(v_limit, 50) - v_in_flight)
      returning delivery_id;
  end loop;
end;
$$;
comment on function acquire_delivery_leases(text, uuid[], text[]) is 'Leases for a batch of in-flight deliveries, each tenant up to its max_concurrent_deliveries; returns the leased ids.';

-- The single-delivery form, now one case of the batch form (one locking rule for both).
create or replace function acquire_delivery_lease(p_tenant_id text, p_delivery_id uuid, p_worker_id text)
returns boolean
language sql
as $$
  select exists (
    select 1 from acquire_delivery_leases(p_worker_id, array[p_delivery_id], array[p_tenant_id])
  );
$$;

-- Admission to max_events_per_sec in one call: the sliding window of migration 002, read and
-- updated under the tenants' row locks (taken in tenant order), for a whole ingest batch.
-- Returns, per tenant, how many of the requested events may be stored now, the limit, what
-- is left in the window, and the seconds until it has room again (≥ 1).
-- p_now_ms: the clock to use (null = now; tests pass their own). p_wait_for_disk = false lets
-- the calling transaction commit without waiting for the disk (a crash then forgets the newest
-- counts, which only lets a little more through afterwards).
create function admit_events(
  p_tenant_ids text[],
  p_requested integer[],
  p_now_ms bigint default null,
  p_wait_for_disk boolean default true
)
returns table (tenant_id text, admitted integer, max_per_sec integer, remaining integer, reset_seconds integer)
language plpgsql
as $$
#variable_conflict use_column
declare
  v_now_ms bigint;
  v_current bigint;
  v_index integer;
  r record;
  v_used integer;
  v_oldest bigint;
  v_admitted integer;
  v_frees_at bigint;
begin
  if not p_wait_for_disk then
    perform set_config('synchronous_commit', 'off', true);
  end if;
  insert into event_rate_windows (tenant_id)
  select t from unnest(p_tenant_ids) t order by 1
  on conflict do nothing;
  perform 1 from event_rate_windows w where w.tenant_id = any (p_tenant_ids) order by w.tenant_id for update;
  -- The clock is read once the rows are ours: whoever held them before has written its slot,
  -- and it is not in our future.
  v_now_ms := coalesce(p_now_ms, floor(extract(epoch from clock_timestamp()) * 1000)::bigint);
  v_current := v_now_ms / 100;
  v_index := (v_current % 10)::integer + 1;
  for r in
    select w.tenant_id, q.max_events_per_sec as lim, w.slot_numbers, w.slot_counts, req.n
      from unnest(p_tenant_ids, p_requested) as req(t, n)
      join event_rate_windows w on w.tenant_id = req.t
      join quotas q on q.tenant_id = req.t
     order by w.tenant_id
  loop
    v_used := 0;
    v_oldest := null;
    for i in 1..10 loop
      if r.slot_numbers[i] > v_current - 10 and r.slot_numbers[i] <= v_current and r.slot_counts[i] > 0 then
        v_used := v_used + r.slot_counts[i];
        v_oldest := least(v_oldest, r.slot_numbers[i]);
      end if;
    end loop;
    v_admitted := greatest(0, least(r.n, r.lim - v_used));
    if v_admitted > 0 then
      update event_rate_windows w
         set slot_numbers[v_index] = v_current,
             slot_counts[v_index] = v_admitted
               + case when w.slot_numbers[v_index] = v_current then w.slot_counts[v_index] else 0 end,
             updated_at = now()
       where w.tenant_id = r.tenant_id;
      v_oldest := coalesce(v_oldest, v_current);
    end if;
    -- The window frees room when its oldest counted slot falls out of it.
    v_frees_at := case when v_oldest is null then v_now_ms else (v_oldest + 10) * 100 end;
    tenant_id := r.tenant_id;
    admitted := v_admitted;
    max_per_sec := r.lim;
    remaining := greatest(0, r.lim - v_used - v_admitted);
    reset_seconds := greatest(1, ceil((v_frees_at - v_now_ms) / 1000.0))::integer;
    return next;
  end loop;
end;
$$;
comment on function admit_events(text[], integer[], bigint, boolean) is 'Takes up to p_requested events per tenant from its max_events_per_sec window; one row per tenant.';
