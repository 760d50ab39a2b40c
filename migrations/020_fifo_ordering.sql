-- Ordered delivery per endpoint. A webhook with ordering 'fifo' has its deliveries attempted
-- one at a time, in the order their events committed: the next is not sent until the one
-- before it has succeeded or been dead-lettered (a retrying head blocks that webhook only).
--
-- Each delivery of a FIFO webhook gets fifo_seq, the webhook's next number (webhooks.fifo_next),
-- taken by the statement that stores the event with the webhook's row locked until commit: so
-- numbers follow commit order. A delivery is sendable only when no delivery of its webhook with
-- a smaller fifo_seq is still waiting (pending, failed or paused); the index below answers that.
-- When one ends (succeeded or dead), the statement that records it queues the next.
alter table webhooks add column ordering text not null default 'none'
  constraint webhooks_ordering_check check (ordering in ('none', 'fifo'));
alter table webhooks add column fifo_next bigint not null default 0;
comment on column webhooks.ordering is
  'none: deliveries in parallel; fifo: one at a time, in event order (applies to events accepted after it is set).';
comment on column webhooks.fifo_next is 'The last fifo_seq given to a delivery of this webhook.';

alter table deliveries add column fifo_seq bigint;
comment on column deliveries.fifo_seq is
  'Place in its FIFO webhook''s order; null for unordered webhooks (or cleared when ordering went back to none).';
create index deliveries_fifo_waiting_idx on deliveries (webhook_id, fifo_seq)
  where fifo_seq is not null and status in ('pending', 'failed', 'paused');

-- hookrelay.emit numbers FIFO deliveries the same way.
create or replace function hookrelay.emit(
  tenant_id text,
  type text,
  payload jsonb,
  idempotency_key text default null,
  traceparent text default null
)
returns uuid
language plpgsql
security definer
set search_path = public, pg_temp
as $$
#variable_conflict use_variable
declare
  v_tenant text := emit.tenant_id;
  v_type text := emit.type;
  v_key text := emit.idempotency_key;
  v_max_bytes integer;
  v_event_id uuid := gen_random_uuid();
  v_existing uuid;
  v_admitted integer;
  v_limit integer;
  v_reset integer;
  v_created_at timestamptz := now();
  v_waiting integer;
  v_deliveries json;
begin
  if v_tenant is null or v_tenant !~ '^[A-Za-z0-9_.:-]{1,128}$' then
    raise exception 'tenant_id must match ^[A-Za-z0-9_.:-]{1,128}$' using errcode = 'HR400';
  end if;
  if v_type is null or v_type !~ '^[A-Za-z0-9_.:-]{1,128}$' then
    raise exception 'type must match ^[A-Za-z0-9_.:-]{1,128}$' using errcode = 'HR400';
  end if;
  if payload is null or jsonb_typeof(payload) <> 'object' then
    raise exception 'payload must be a JSON object' using errcode = 'HR400';
  end if;
  select value::integer into v_max_bytes from service_settings where name = 'max_payload_bytes';
  if octet_length(payload::text) > coalesce(v_max_bytes, 262144) then
    raise exception 'payload is larger than % bytes', coalesce(v_max_bytes, 262144) using errcode = 'HR413';
  end if;
  if json_depth(payload) > 64 then
    raise exception 'payload must not nest deeper than 64 levels' using errcode = 'HR400';
  end if;
  if v_key is not null and (char_length(v_key) < 1 or char_length(v_key) > 255) then
    raise exception 'idempotency_key must be 1 to 255 characters' using errcode = 'HR400';
  end if;

  insert into tenants (id) values (v_tenant) on conflict do nothing;
  insert into quotas (tenant_id) values (v_tenant) on conflict do nothing;

  -- The same key within 24 h: the event it first created. Inserting the key makes a concurrent
  -- emit with the same key wait until this transaction ends.
  if v_key is not null then
    insert into idempotency_keys (tenant_id, key, event_id, response)
    values (v_tenant, v_key, v_event_id, '{}')
    on conflict on constraint idempotency_keys_pkey do update
      set event_id = excluded.event_id, response = excluded.response, created_at = now()
      where idempotency_keys.created_at < now() - interval '24 hours'
    returning event_id into v_existing;
    if v_existing is null then
      select k.event_id into v_existing
        from idempotency_keys k where k.tenant_id = v_tenant and k.key = v_key;
      return v_existing;
    end if;
  end if;

  -- max_events_per_sec, as POST /events applies it; the window row stays locked until the
  -- caller's transaction ends (keep emitting transactions short).
  select a.admitted, a.max_per_sec, a.reset_seconds into v_admitted, v_limit, v_reset
    from admit_events(array[v_tenant], array[1], null, true) a;
  if v_limit = 0 then
    raise exception 'tenant % may send no events (max_events_per_sec is 0)', v_tenant
      using errcode = 'HR403';
  end if;
  if v_admitted < 1 then
    raise exception 'tenant % is over its limit of % events per second', v_tenant, v_limit
      using errcode = 'HR429', hint = format('retry in %s s', v_reset);
  end if;

  insert into events (id, tenant_id, type, payload, idempotency_key, created_at)
  values (v_event_id, v_tenant, v_type, payload::json, v_key, v_created_at);

  with matched as (
    select gen_random_uuid() as id, w.id as webhook_id, w.ordering = 'fifo' as fifo,
           row_number() over (order by w.created_at, w.id) as ord
      from webhooks w
     where w.tenant_id = v_tenant and w.enabled and w.event_types && event_type_filters(v_type)
       and filter_matches(w.filter, v_type, v_created_at, payload::json)
  ), fifo_numbers as (
    -- A FIFO webhook's next number; its row stays locked until the caller commits, so numbers
    -- are in commit order.
    update webhooks w set fifo_next = w.fifo_next + 1
      from matched m
     where w.id = m.webhook_id and m.fifo
    returning w.id, w.fifo_next as fifo_seq
  ), inserted as (
    insert into deliveries (id, event_id, webhook_id, tenant_id, fifo_seq)
    select m.id, v_event_id, m.webhook_id, v_tenant, n.fifo_seq
      from matched m left join fifo_numbers n on n.id = m.webhook_id
    returning id
  )
  select json_agg(json_strip_nulls(json_build_object('id', m.id, 'attempt', 1, 'traceparent', emit.traceparent))
                  order by m.ord)
    into v_deliveries
    from matched m join inserted i on i.id = m.id;

  if v_deliveries is not null then
    -- The tenant's fair rank, as for any new job (src/delivery/enqueue.ts).
    select count(*)::integer into v_waiting
      from (select 1 from deliveries d
             where d.tenant_id = v_tenant and d.status = 'pending' and d.event_id <> v_event_id
             limit 100) w;
    perform graphile_worker.add_jobs(array[deliver_job_spec(v_tenant, v_deliveries, now(), least(100, v_waiting))]);
  end if;
  return v_event_id;
end
$$;

create or replace view hookrelay.webhooks as
  select id, tenant_id, url, event_types, description, filter, enabled, disabled_reason, disabled_at,
         failing_since, created_at, updated_at, ordering
    from webhooks;
