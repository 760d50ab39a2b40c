-- Two things an application can do inside PostgreSQL:
--  * emit an event in its own transaction (hookrelay.emit): the event and its deliveries exist
--    if and only if that transaction commits;
--  * give a webhook a payload filter (webhooks.filter, a SQL/JSON path predicate over the body
--    a receiver gets), evaluated in the statement that creates deliveries.

-- A webhook's filter: deliveries are created only for events whose body
-- {"type", "timestamp", "data"} the predicate matches. A filter that errors on an event (a
-- string compared to a number) does not match it.
-- Kept as the text given (PostgreSQL would print a jsonpath in its own canonical form); the
-- service checks that it parses before saving it.
alter table webhooks add column filter text;
comment on column webhooks.filter is
  'SQL/JSON path predicate (jsonpath text) over {"type", "timestamp", "data"}; null: every event of its event_types.';

-- What the service reads from its configuration, for SQL that runs without it (hookrelay.emit).
-- The service writes it at start-up.
create table service_settings (
  name        text primary key,
  value       text not null,
  updated_at  timestamptz not null default now()
);
comment on table service_settings is
  'Configuration the service writes at start-up for SQL that runs without it (e.g. max_payload_bytes for hookrelay.emit).';

-- The event_types entries that receive an event type: the type itself, `*`, and `<prefix>.*`
-- for each prefix of it that ends at a dot (src/events/event-type-match.ts is the same rule).
create function event_type_filters(p_type text)
returns text[]
language sql
immutable
as $$
  -- A prefix matches only types that go on after its dot: `a.` gives no `a.*`.
  select array[p_type, '*'] || coalesce(array(
           select array_to_string(parts[1:n], '.') || '.*'
             from string_to_array(p_type, '.') parts,
                  generate_series(1, cardinality(parts) - 1) n
            where n < cardinality(parts) - 1 or parts[cardinality(parts)] <> ''
            order by n), '{}')
$$;

-- How deep a JSON value nests: a scalar 0, an object or array 1 + its deepest member.
create function json_depth(p_value jsonb)
returns integer
language sql
immutable
as $$
  select case jsonb_typeof(p_value)
           when 'object' then 1 + coalesce((select max(json_depth(v)) from jsonb_each(p_value) e(k, v)), 0)
           when 'array' then 1 + coalesce((select max(json_depth(v)) from jsonb_array_elements(p_value) v), 0)
           else 0
         end
$$;

-- The body a receiver gets, as jsonb, for filters: {"type", "timestamp", "data"}.
create function delivery_body(p_type text, p_created_at timestamptz, p_payload json)
returns jsonb
language sql
stable
as $$
  select jsonb_build_object(
           'type', p_type,
           'timestamp', to_char(p_created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
           'data', p_payload::jsonb)
$$;

-- Whether a webhook's filter lets an event through (no filter: yes). Errors do not match.
create function filter_matches(p_filter text, p_type text, p_created_at timestamptz, p_payload json)
returns boolean
language sql
stable
as $$
  select p_filter is null
      or coalesce(jsonb_path_match(delivery_body(p_type, p_created_at, p_payload), p_filter::jsonpath, '{}', true), false)
$$;

-- The one definition of a `deliver` job: payload {"tenant_id", "deliveries": [{"id", "attempt",
-- "traceparent"?}]}, the tenant's flag (t:<tenant>, which a process at the tenant's cap names
-- in forbiddenFlags), 25 attempts for the job itself (a delivery's own retries are ours).
create function deliver_job_spec(p_tenant_id text, p_deliveries json, p_run_at timestamptz, p_priority integer)
returns graphile_worker.job_spec
language sql
immutable
as $$
  select row('deliver', json_build_object('tenant_id', p_tenant_id, 'deliveries', p_deliveries),
             null, p_run_at, 25, null, p_priority, array['t:' || p_tenant_id])::graphile_worker.job_spec
$$;

-- The public SQL interface. Everything outside this schema is private to the service.
create schema hookrelay;
comment on schema hookrelay is
  'The service''s public SQL interface: emit() and read-only views. Grant hookrelay_emitter to an application role that emits.';

create function hookrelay.emit(
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
    select gen_random_uuid() as id, w.id as webhook_id, row_number() over (order by w.created_at, w.id) as ord
      from webhooks w
     where w.tenant_id = v_tenant and w.enabled and w.event_types && event_type_filters(v_type)
       and filter_matches(w.filter, v_type, v_created_at, payload::json)
  ), inserted as (
    insert into deliveries (id, event_id, webhook_id, tenant_id)
    select id, v_event_id, webhook_id, v_tenant from matched
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
comment on function hookrelay.emit(text, text, jsonb, text, text) is
  'Stores an event and its deliveries in the caller''s transaction (delivered only if it commits); returns the event id. SQLSTATE HR400 invalid, HR403 events disabled, HR413 too large, HR429 over max_events_per_sec.';
revoke all on function hookrelay.emit(text, text, jsonb, text, text) from public;

-- Read-only views for operators and applications (grant select as needed).
create view hookrelay.events as
  select id, tenant_id, type, payload, idempotency_key, created_at from events;
create view hookrelay.deliveries as
  select id, event_id, webhook_id, tenant_id, status, attempt_count, next_attempt_at, last_error,
         last_status_code, created_at, updated_at, succeeded_at
    from deliveries;
create view hookrelay.dead_letters as
  select delivery_id, tenant_id, webhook_id, event_id, last_error, attempts, created_at from dlq;
create view hookrelay.webhooks as
  select id, tenant_id, url, event_types, description, filter, enabled, disabled_reason, disabled_at,
         failing_since, created_at, updated_at
    from webhooks;

-- The role an application is granted to emit: it may call emit and nothing else. Creating a
-- role needs CREATEROLE; without it the migration goes on, and docs/api.md shows the statements
-- for a database administrator.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'hookrelay_emitter') then
    create role hookrelay_emitter nologin;
  end if;
exception when insufficient_privilege then
  raise notice 'role hookrelay_emitter not created (no CREATEROLE): see docs/api.md, SQL emit';
end
$$;
do $$
begin
  if exists (select 1 from pg_roles where rolname = 'hookrelay_emitter') then
    grant usage on schema hookrelay to hookrelay_emitter;
    grant execute on function hookrelay.emit(text, text, jsonb, text, text) to hookrelay_emitter;
  end if;
end
$$;
