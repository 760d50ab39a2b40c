-- An event type catalog per tenant (names, descriptions, JSON Schemas, deprecation), and the
-- service's own operational events (types under hookrelay.), stored and delivered like any
-- event, in the transaction of the change that causes them.

create table event_types (
  tenant_id    text not null references tenants (id) on delete cascade,
  name         text not null,
  description  text,
  schema       jsonb,
  deprecated   boolean not null default false,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  primary key (tenant_id, name)
);
comment on table event_types is
  'A tenant''s event type catalog: POST /events validates a payload against its type''s JSON Schema (draft 2020-12).';

alter table tenants add column unknown_event_types text not null default 'accept'
  constraint tenants_unknown_event_types_check check (unknown_event_types in ('accept', 'reject'));
alter table tenants add column catalog_version bigint not null default 0;
comment on column tenants.unknown_event_types is
  'accept: any event type; reject: only types in event_types (400 otherwise).';
comment on column tenants.catalog_version is
  'Bumped by every change to the tenant''s event_types or unknown_event_types: API processes recompile its schemas when it moves.';

create function bump_catalog_version() returns trigger
language plpgsql
as $$
begin
  update tenants set catalog_version = catalog_version + 1
   where id = coalesce(new.tenant_id, old.tenant_id);
  return null;
end
$$;
create trigger event_types_catalog_version
  after insert or update or delete on event_types
  for each row execute function bump_catalog_version();

-- `*` means every type of the tenant's own, not the service's operational events: those go to
-- webhooks that name them (`hookrelay.*`, `hookrelay.webhook.*`, or an exact type), so that
-- existing catch-all endpoints do not start receiving events they never asked for.
create or replace function event_type_filters(p_type text)
returns text[]
language sql
immutable
as $$
  -- A prefix matches only types that go on after its dot: `a.` gives no `a.*`.
  select array[p_type] || case when p_type like 'hookrelay.%' then '{}'::text[] else array['*'] end
         || coalesce(array(
              select array_to_string(parts[1:n], '.') || '.*'
                from string_to_array(p_type, '.') parts,
                     generate_series(1, cardinality(parts) - 1) n
               where n < cardinality(parts) - 1 or parts[cardinality(parts)] <> ''
               order by n), '{}')
$$;

-- Stores an event and its deliveries, with their first job: the one way an event is written
-- from SQL (hookrelay.emit after its checks, and the service's operational events).
create function store_event(
  p_event_id uuid, p_tenant_id text, p_type text, p_payload json, p_idempotency_key text,
  p_created_at timestamptz, p_traceparent text
)
returns void
language plpgsql
as $$
declare
  v_waiting integer;
  v_deliveries json;
begin
  insert into events (id, tenant_id, type, payload, idempotency_key, created_at)
  values (p_event_id, p_tenant_id, p_type, p_payload, p_idempotency_key, p_created_at);

  with matched as (
    select gen_random_uuid() as id, w.id as webhook_id, w.ordering = 'fifo' as fifo,
           row_number() over (order by w.created_at, w.id) as ord
      from webhooks w
     where w.tenant_id = p_tenant_id and w.enabled and w.event_types && event_type_filters(p_type)
       and filter_matches(w.filter, p_type, p_created_at, p_payload)
  ), fifo_numbers as (
    -- A FIFO webhook's next number; its row stays locked until commit, so numbers are in
    -- commit order.
    update webhooks w set fifo_next = w.fifo_next + 1
      from matched m
     where w.id = m.webhook_id and m.fifo
    returning w.id, w.fifo_next as fifo_seq
  ), inserted as (
    insert into deliveries (id, event_id, webhook_id, tenant_id, fifo_seq)
    select m.id, p_event_id, m.webhook_id, p_tenant_id, n.fifo_seq
      from matched m left join fifo_numbers n on n.id = m.webhook_id
    returning id
  )
  select json_agg(json_strip_nulls(json_build_object('id', m.id, 'attempt', 1, 'traceparent', p_traceparent))
                  order by m.ord)
    into v_deliveries
    from matched m join inserted i on i.id = m.id;

  if v_deliveries is not null then
    -- The tenant's fair rank, as for any new job (src/delivery/enqueue.ts).
    select count(*)::integer into v_waiting
      from (select 1 from deliveries d
             where d.tenant_id = p_tenant_id and d.status = 'pending' and d.event_id <> p_event_id
             limit 100) w;
    perform graphile_worker.add_jobs(array[deliver_job_spec(p_tenant_id, v_deliveries, now(), least(100, v_waiting))]);
  end if;
end
$$;

-- The service's own events (hookrelay.webhook.disabled, hookrelay.delivery.dead, …): no rate
-- limit, no idempotency key; delivered to the tenant's webhooks that subscribe to them.
create function emit_operational(p_tenant_id text, p_type text, p_payload jsonb)
returns uuid
language plpgsql
as $$
declare
  v_event_id uuid := gen_random_uuid();
begin
  if p_type not like 'hookrelay.%' then
    raise exception 'operational event types start with hookrelay.' using errcode = 'HR400';
  end if;
  perform store_event(v_event_id, p_tenant_id, p_type, p_payload::json, null, now(), null);
  return v_event_id;
end
$$;
revoke all on function emit_operational(text, text, jsonb) from public;

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
begin
  if v_tenant is null or v_tenant !~ '^[A-Za-z0-9_.:-]{1,128}$' then
    raise exception 'tenant_id must match ^[A-Za-z0-9_.:-]{1,128}$' using errcode = 'HR400';
  end if;
  if v_type is null or v_type !~ '^[A-Za-z0-9_.:-]{1,128}$' then
    raise exception 'type must match ^[A-Za-z0-9_.:-]{1,128}$' using errcode = 'HR400';
  end if;
  if v_type like 'hookrelay.%' then
    raise exception 'types under hookrelay. are the service''s own' using errcode = 'HR400';
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

  -- A tenant that accepts only the types of its catalog.
  if exists (select 1 from tenants t where t.id = v_tenant and t.unknown_event_types = 'reject')
     and not exists (select 1 from event_types et where et.tenant_id = v_tenant and et.name = v_type) then
    raise exception 'event type % is not in the catalog of tenant %', v_type, v_tenant using errcode = 'HR400';
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

  perform store_event(v_event_id, v_tenant, v_type, payload::json, v_key, v_created_at, emit.traceparent);
  return v_event_id;
end
$$;
revoke all on function store_event(uuid, text, text, json, text, timestamptz, text) from public;
